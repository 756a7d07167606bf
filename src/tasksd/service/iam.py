"""IAM on queues: policy validation and presentation, and the permissions that exist."""

from __future__ import annotations

from dataclasses import replace

from tasksd.auth.conditions import ConditionError, compile_condition
from tasksd.auth.roles import CLOUDTASKS_PERMISSIONS, PREDEFINED_ROLES
from tasksd.model.errors import InvalidArgument
from tasksd.model.iam import Policy

PERMISSIONS = CLOUDTASKS_PERMISSIONS
"""The permissions that exist: what TestIamPermissions can answer."""
_VERSIONS = (0, 1, 3)
_MEMBER_TYPES = ("user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:", "deleted:")


def check_requested_version(version: int) -> None:
    if version not in _VERSIONS:
        raise InvalidArgument(f"options.requested_policy_version must be 0, 1 or 3, got {version}.")


def check_policy(policy: Policy) -> None:
    """Raises InvalidArgument for a policy the IAM rules reject, naming the offending part."""
    if policy.version not in _VERSIONS:
        raise InvalidArgument(f"policy.version must be 0, 1 or 3, got {policy.version}.")
    for index, binding in enumerate(policy.bindings):
        where = f"policy.bindings[{index}]"
        if not binding.role:
            raise InvalidArgument(f"{where}.role is required.")
        if not binding.role.startswith(("roles/", "projects/", "organizations/")):
            raise InvalidArgument(f"{where}.role {binding.role!r} is not a role name (roles/…).")
        if binding.role.startswith("roles/") and binding.role not in PREDEFINED_ROLES:
            raise InvalidArgument(f"Role {binding.role} is not supported for this resource.")
        if not binding.members:
            raise InvalidArgument(f"{where}.members must name at least one principal.")
        for member in binding.members:
            if member not in ("allUsers", "allAuthenticatedUsers") and not member.startswith(_MEMBER_TYPES):
                raise InvalidArgument(
                    f"{where}.members: {member!r} is not a principal (user:, serviceAccount:, "
                    "group:, domain:, allUsers, …)."
                )
        if binding.condition is not None:
            if policy.version != 3:
                raise InvalidArgument(f"{where}.condition requires policy.version 3.")
            try:
                compile_condition(binding.condition.expression)
            except ConditionError as exc:
                raise InvalidArgument(f"{where}.condition.expression: {exc}") from None


def present(policy: Policy, requested_version: int) -> Policy:
    """The policy as GetIamPolicy returns it: version 3 with conditions, else version 1.

    Raises:
        InvalidArgument: the policy has conditions and the caller did not ask for version 3.
    """
    conditional = any(b.condition is not None for b in policy.bindings)
    if conditional and requested_version != 3:
        raise InvalidArgument(
            "The policy has conditional role bindings: set options.requested_policy_version to 3."
        )
    etag = policy.etag or bytes(8)
    return replace(policy, version=3 if conditional else 1, etag=etag)


def check_permissions(permissions: list[str]) -> None:
    for permission in permissions:
        if "*" in permission:
            raise InvalidArgument(f"Permissions with wildcards are not allowed, got {permission!r}.")
