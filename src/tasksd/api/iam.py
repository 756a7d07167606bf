"""google.iam.v1 Policy messages ⇄ the model (the same in every API version)."""

from __future__ import annotations

from google.iam.v1 import policy_pb2

from tasksd.model.errors import InvalidArgument
from tasksd.model.iam import Binding, Expr, Policy


def policy_from_pb(message: policy_pb2.Policy) -> Policy:
    if message.audit_configs:
        raise InvalidArgument("policy.audit_configs are not supported on Cloud Tasks queues.")
    return Policy(
        version=message.version,
        bindings=[
            Binding(
                role=b.role,
                members=list(b.members),
                condition=Expr(
                    b.condition.expression, b.condition.title, b.condition.description, b.condition.location
                )
                if b.HasField("condition")
                else None,
            )
            for b in message.bindings
        ],
        etag=message.etag,
    )


def policy_to_pb(policy: Policy) -> policy_pb2.Policy:
    message = policy_pb2.Policy(version=policy.version, etag=policy.etag)
    for binding in policy.bindings:
        out = message.bindings.add(role=binding.role, members=binding.members)
        if binding.condition is not None:
            c = binding.condition
            out.condition.expression, out.condition.title = c.expression, c.title
            out.condition.description, out.condition.location = c.description, c.location
    return message
