"""Who may do what: the effective IAM policy of a resource and the permissions it grants.

A queue's effective policy is the project-level bindings of the config (for its project, or
``*``) plus the queue's own policy (SetIamPolicy). Policies only grant, so a permission the
project bindings give needs no read of the queue's policy. A member matches a caller who is
that principal, a ``group:`` of the config holding it (groups may hold groups), the
``domain:`` of its email, or ``allUsers``/``allAuthenticatedUsers`` (every caller here is
authenticated). ``deleted:`` members and ``principalSet://`` members match nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tasksd.auth.conditions import holds
from tasksd.auth.config import AuthConfig, ProjectBinding
from tasksd.auth.roles import ACT_AS
from tasksd.model.iam import Policy

QUEUE_TYPE = "cloudtasks.googleapis.com/Queue"
LOCATION_TYPE = "cloudtasks.googleapis.com/Location"
SERVICE_ACCOUNT_TYPE = "iam.googleapis.com/ServiceAccount"
_EMAIL_KINDS = ("user:", "serviceAccount:", "group:", "domain:")


def normalize_member(member: str) -> str:
    """Emails (and domains) compare without regard to case, as IAM compares them."""
    for kind in _EMAIL_KINDS:
        if member.startswith(kind):
            return kind + member[len(kind) :].lower()
    return member


class Iam:
    """The config's IAM (roles, groups, project bindings) and the checks made with it."""

    def __init__(self, config: AuthConfig) -> None:
        self.roles = config.roles
        self._groups = {
            normalize_member(name): frozenset(map(normalize_member, members))
            for name, members in config.groups.items()
        }
        self._bindings = [
            ProjectBinding(b.project, b.role, tuple(map(normalize_member, b.members)), b.condition)
            for b in config.bindings
        ]
        self._identities: dict[str, frozenset[str]] = {}
        self._project: dict[tuple[str, str], frozenset[str]] = {}

    def identities(self, principal: str) -> frozenset[str]:
        """Every member string that names ``principal``."""
        found = self._identities.get(principal)
        if found is not None:
            return found
        own = normalize_member(principal)
        names = {own, "allUsers", "allAuthenticatedUsers"}
        if own.startswith(("user:", "serviceAccount:")) and "@" in own:
            names.add("domain:" + own.rpartition("@")[2])
        elif own.startswith("principal://") and "://" not in own[len("principal://") :]:
            # An ID token's principal names its issuer by host; members may spell it as a URL.
            rest = own[len("principal://") :]
            names |= {f"principal://https://{rest}", f"principal://http://{rest}"}
        # Groups holding any of these names, and groups holding those groups.
        changed = True
        while changed:
            changed = False
            for group, members in self._groups.items():
                if group not in names and not members.isdisjoint(names):
                    names.add(group)
                    changed = True
        found = frozenset(names)
        if len(self._identities) > 10_000:
            self._identities.clear()
        self._identities[principal] = found
        return found

    def project_permissions(self, principal: str, project: str) -> frozenset[str]:
        """What the unconditional project-level bindings give ``principal`` on ``project``."""
        key = (principal, project)
        found = self._project.get(key)
        if found is None:
            names = self.identities(principal)
            granted: set[str] = set()
            for binding in self._bindings:
                if (
                    binding.condition is None
                    and binding.project in (project, "*")
                    and not names.isdisjoint(binding.members)
                ):
                    granted |= self.roles.get(binding.role, frozenset())
            found = frozenset(granted)
            if len(self._project) > 10_000:
                self._project.clear()
            self._project[key] = found
        return found

    def conditional_permissions(
        self, principal: str, project: str, resource: str, resource_type: str, now: datetime
    ) -> set[str]:
        """What the project-level bindings with a condition give, where the condition holds."""
        granted: set[str] = set()
        names = self.identities(principal)
        for binding in self._bindings:
            if (
                binding.condition is not None
                and binding.project in (project, "*")
                and not names.isdisjoint(binding.members)
                and holds(binding.condition, resource, resource_type, now)
            ):
                granted |= self.roles.get(binding.role, frozenset())
        return granted

    def policy_permissions(self, principal: str, policy: Policy, resource: str, now: datetime) -> set[str]:
        """What a queue's own policy gives ``principal``."""
        names = self.identities(principal)
        granted: set[str] = set()
        for binding in policy.bindings:
            if names.isdisjoint(normalize_member(m) for m in binding.members):
                continue
            if binding.condition is not None and not holds(
                binding.condition.expression, resource, QUEUE_TYPE, now
            ):
                continue
            granted |= self.roles.get(binding.role, frozenset())
        return granted

    def has_conditions(self) -> bool:
        return any(b.condition is not None for b in self._bindings)

    def may_act_as(self, principal: str, email: str, now: datetime) -> bool:
        """Whether ``principal`` holds iam.serviceAccounts.actAs on the service account
        ``email``: on project ``*`` or the account's own project."""
        project = service_account_project(email)
        projects: Iterable[str] = ("*",) if project is None else (project,)
        resource = f"projects/{project or '-'}/serviceAccounts/{email}"
        for each in projects:
            if ACT_AS in self.project_permissions(principal, each):
                return True
            if ACT_AS in self.conditional_permissions(principal, each, resource, SERVICE_ACCOUNT_TYPE, now):
                return True
        return False


def service_account_project(email: str) -> str | None:
    """The project of a service account address (NAME@PROJECT.iam.gserviceaccount.com)."""
    local, _, domain = email.partition("@")
    if local and domain.endswith(".iam.gserviceaccount.com"):
        return domain.removesuffix(".iam.gserviceaccount.com")
    return None
