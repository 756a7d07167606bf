"""The operator's command line: ``tasksd queues …`` and ``tasksd tasks …``, mirroring
``gcloud tasks`` against a running tasksd through the official google-cloud-tasks client."""

from tasksd.ctl.queues import queues
from tasksd.ctl.tasks import tasks

__all__ = ["queues", "tasks"]
