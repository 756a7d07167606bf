"""Google's predefined IAM roles that matter to Cloud Tasks, as permission sets.

This module owns the literal permission lists tasksd's IAM check grants per role. Nothing else
belongs here: no policy evaluation, no principals, no bindings.

Source, read 2026-12-02:

- Cloud Tasks roles: https://cloud.google.com/iam/docs/roles-permissions/cloudtasks
  (newest form, https://docs.cloud.google.com/iam/docs/roles-permissions/cloudtasks.md.txt,
  which lists ``cloudtasks.operations.get`` in Admin, Editor, Viewer and Enqueuer). The
  ``cloudtasks.*`` roles below are Google's lists exactly, including the non-Cloud Tasks
  permissions Google puts in them (``resourcemanager.projects.get``/``list``,
  ``monitoring.timeSeries.list``).
- Basic roles: https://cloud.google.com/iam/docs/roles-overview#basic and the "Included in
  roles" column of the Cloud Tasks page. ``roles/owner``, ``roles/editor`` and ``roles/viewer``
  hold thousands of permissions; only their ``cloudtasks.*`` permissions are kept, plus
  ``iam.serviceAccounts.actAs``, which Owner and Editor have and Viewer does not.
- ``roles/iam.serviceAccountUser``: https://cloud.google.com/iam/docs/service-account-permissions
  and the role index https://cloud.google.com/iam/docs/roles-permissions. Only its
  ``iam.serviceAccounts.*`` permissions are kept (Google's role also holds
  ``resourcemanager.projects.get`` and ``resourcemanager.projects.list``).

Cross-checked against the role definitions the IAM API itself returned (``gcloud iam roles
describe``, as archived by darkbitio/gcp-iam-role-permissions, snapshot 2026-08-22): identical.
"""

from __future__ import annotations

_CLOUDTASKS_ROLES: dict[str, frozenset[str]] = {
    # Cloud Tasks Admin: "Full access to queues and tasks."
    "roles/cloudtasks.admin": frozenset(
        {
            "cloudtasks.cmekConfig.get",
            "cloudtasks.cmekConfig.update",
            "cloudtasks.locations.get",
            "cloudtasks.locations.list",
            "cloudtasks.operations.get",
            "cloudtasks.queues.create",
            "cloudtasks.queues.delete",
            "cloudtasks.queues.get",
            "cloudtasks.queues.getIamPolicy",
            "cloudtasks.queues.list",
            "cloudtasks.queues.pause",
            "cloudtasks.queues.purge",
            "cloudtasks.queues.resume",
            "cloudtasks.queues.setIamPolicy",
            "cloudtasks.queues.update",
            "cloudtasks.tasks.create",
            "cloudtasks.tasks.delete",
            "cloudtasks.tasks.fullView",
            "cloudtasks.tasks.get",
            "cloudtasks.tasks.list",
            "cloudtasks.tasks.run",
            "monitoring.timeSeries.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Editor: "Editor role for cloudtasks" (no cmekConfig.update, no IAM policy access).
    "roles/cloudtasks.editor": frozenset(
        {
            "cloudtasks.cmekConfig.get",
            "cloudtasks.locations.get",
            "cloudtasks.locations.list",
            "cloudtasks.operations.get",
            "cloudtasks.queues.create",
            "cloudtasks.queues.delete",
            "cloudtasks.queues.get",
            "cloudtasks.queues.list",
            "cloudtasks.queues.pause",
            "cloudtasks.queues.purge",
            "cloudtasks.queues.resume",
            "cloudtasks.queues.update",
            "cloudtasks.tasks.create",
            "cloudtasks.tasks.delete",
            "cloudtasks.tasks.fullView",
            "cloudtasks.tasks.get",
            "cloudtasks.tasks.list",
            "cloudtasks.tasks.run",
            "monitoring.timeSeries.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Viewer: "Get and list access to tasks, queues, and locations."
    "roles/cloudtasks.viewer": frozenset(
        {
            "cloudtasks.cmekConfig.get",
            "cloudtasks.locations.get",
            "cloudtasks.locations.list",
            "cloudtasks.operations.get",
            "cloudtasks.queues.get",
            "cloudtasks.queues.list",
            "cloudtasks.tasks.fullView",
            "cloudtasks.tasks.get",
            "cloudtasks.tasks.list",
            "monitoring.timeSeries.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Enqueuer (Beta): "Access to create tasks."
    "roles/cloudtasks.enqueuer": frozenset(
        {
            "cloudtasks.operations.get",
            "cloudtasks.tasks.create",
            "cloudtasks.tasks.fullView",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Queue Admin: "Admin access to queues."
    "roles/cloudtasks.queueAdmin": frozenset(
        {
            "cloudtasks.locations.get",
            "cloudtasks.locations.list",
            "cloudtasks.queues.create",
            "cloudtasks.queues.delete",
            "cloudtasks.queues.get",
            "cloudtasks.queues.getIamPolicy",
            "cloudtasks.queues.list",
            "cloudtasks.queues.pause",
            "cloudtasks.queues.purge",
            "cloudtasks.queues.resume",
            "cloudtasks.queues.setIamPolicy",
            "cloudtasks.queues.update",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Task Deleter: "Access to delete tasks."
    "roles/cloudtasks.taskDeleter": frozenset(
        {
            "cloudtasks.tasks.delete",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Tasks Task Runner (Beta): "Access to run tasks."
    "roles/cloudtasks.taskRunner": frozenset(
        {
            "cloudtasks.tasks.fullView",
            "cloudtasks.tasks.run",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
}


def _cloudtasks_part(role: str) -> frozenset[str]:
    return frozenset(p for p in _CLOUDTASKS_ROLES[role] if p.startswith("cloudtasks."))


ACT_AS = "iam.serviceAccounts.actAs"

# Every cloudtasks.* permission that exists: exactly the cloudtasks.* part of roles/cloudtasks.admin.
CLOUDTASKS_PERMISSIONS: frozenset[str] = _cloudtasks_part("roles/cloudtasks.admin")

PREDEFINED_ROLES: dict[str, frozenset[str]] = {
    **_CLOUDTASKS_ROLES,
    # The basic roles hold thousands of permissions; what they grant here is their cloudtasks.*
    # part, which is that of Admin, Editor and Viewer of Cloud Tasks, and (Owner, Editor) actAs.
    "roles/owner": CLOUDTASKS_PERMISSIONS | {ACT_AS},
    "roles/editor": _cloudtasks_part("roles/cloudtasks.editor") | {ACT_AS},
    "roles/viewer": _cloudtasks_part("roles/cloudtasks.viewer"),
    # Service Account User: "Run operations as the service account." iam.serviceAccounts.* only.
    "roles/iam.serviceAccountUser": frozenset(
        {
            "iam.serviceAccounts.actAs",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.list",
        }
    ),
}
