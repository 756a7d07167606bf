"""The operations of the API in version-neutral terms: validation, names, defaults."""

from tasksd.service.core import Page, ServiceSettings, TasksService

__all__ = ["Page", "ServiceSettings", "TasksService"]
