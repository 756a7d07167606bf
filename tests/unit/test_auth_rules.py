"""The auth config, IAM member matching and conditions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasksd.auth.conditions import ConditionError, compile_condition, holds
from tasksd.auth.config import read_auth_config
from tasksd.auth.keyfile import new_key_file
from tasksd.auth.policy import Iam
from tasksd.config import ConfigError
from tasksd.model.iam import Binding, Expr, Policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUEUE = "projects/p/locations/l/queues/q"


def _iam(**auth: object) -> Iam:
    config = read_auth_config({"mode": "enforce", **auth})
    assert config is not None
    return Iam(config)


def test_absent_or_off_is_no_authentication() -> None:
    assert read_auth_config(None) is None
    assert read_auth_config({"mode": "off"}) is None


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"mode": "on"}, "auth.mode must be enforce or off"),
        ({"colour": 1}, "unknown key auth.colour"),
        ({"tokens": [{"token": "t"}]}, "auth.tokens[0].principal is required"),
        ({"tokens": [{"token": "t", "principal": "bob"}]}, "must be a principal"),
        ({"tokens": [{"token_env": "TASKSD_SURELY_UNSET_VARIABLE", "principal": "user:a@b"}]}, "is not set"),
        (
            {"api_keys": [{"key": "k", "key_env": "X", "principal": "user:a@b"}]},
            "exactly one of key and key_env",
        ),
        (
            {"bindings": [{"project": "p", "role": "roles/nope", "members": ["user:a@b"]}]},
            "neither a predefined",
        ),
        ({"bindings": [{"project": "p", "role": "roles/viewer", "members": ["bob"]}]}, "must be a member"),
        (
            {
                "bindings": [
                    {"project": "p", "role": "roles/viewer", "members": ["allUsers"], "condition": "(("}
                ]
            },
            "not valid CEL",
        ),
        ({"custom_roles": [{"name": "reader", "permissions": ["a.b.c"]}]}, "projects/PROJECT/roles/ID"),
        (
            {"custom_roles": [{"name": "projects/p/roles/r", "permissions": ["cloudtasks.*"]}]},
            "is not a permission",
        ),
        ({"service_account_keys": ["no-such-file.json"]}, "cannot read"),
        (
            {"oidc_issuers": [{"issuer": "https://i", "audience": "a"}]},
            "exactly one of jwks_uri and jwks_file",
        ),
    ],
)
def test_wrong_config_names_the_key(auth: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        read_auth_config(auth)


def test_key_file_public_part(tmp_path: Path) -> None:
    new_key_file("ci@p.iam.gserviceaccount.com", "http://127.0.0.1:1/token", str(tmp_path / "ci.json"))
    config = read_auth_config({"service_account_keys": ["ci.json"]}, tmp_path)
    assert config is not None
    (key,) = config.service_account_keys
    assert key.email == "ci@p.iam.gserviceaccount.com" and b"PUBLIC KEY" in key.public_key_pem
    assert (tmp_path / "ci.json").stat().st_mode & 0o777 == 0o600


def test_members_groups_and_domains() -> None:
    iam = _iam(
        groups=[
            {"name": "group:devs@example.com", "members": ["user:a@example.com", "group:ops@example.com"]},
            {"name": "group:ops@example.com", "members": ["serviceAccount:bot@p.iam.gserviceaccount.com"]},
        ],
        bindings=[
            {"project": "p", "role": "roles/cloudtasks.viewer", "members": ["group:devs@example.com"]},
            {"project": "*", "role": "roles/cloudtasks.taskDeleter", "members": ["domain:example.com"]},
            {"project": "q", "role": "roles/cloudtasks.enqueuer", "members": ["allAuthenticatedUsers"]},
        ],
    )
    assert "cloudtasks.queues.get" in iam.project_permissions("user:A@Example.com", "p")
    assert "cloudtasks.queues.get" in iam.project_permissions(
        "serviceAccount:bot@p.iam.gserviceaccount.com", "p"
    )
    assert "cloudtasks.queues.get" not in iam.project_permissions("user:b@other.com", "p")
    assert "cloudtasks.tasks.delete" in iam.project_permissions("user:z@example.com", "any")
    assert "cloudtasks.tasks.create" in iam.project_permissions("user:b@other.com", "q")
    assert "cloudtasks.tasks.create" not in iam.project_permissions("user:b@other.com", "p")


def test_queue_policy_and_conditions() -> None:
    iam = _iam()
    policy = Policy(
        version=3,
        bindings=[
            Binding("roles/cloudtasks.enqueuer", ["user:a@example.com"]),
            Binding(
                "roles/cloudtasks.viewer",
                ["user:a@example.com"],
                Expr('request.time < timestamp("2020-01-01T00:00:00Z")'),
            ),
            Binding(
                "roles/cloudtasks.taskRunner", ["user:a@example.com"], Expr('resource.name.endsWith("/q")')
            ),
            Binding("roles/cloudtasks.taskDeleter", ["deleted:user:a@example.com"]),
        ],
    )
    held = iam.policy_permissions("user:a@example.com", policy, QUEUE, NOW)
    assert "cloudtasks.tasks.create" in held and "cloudtasks.tasks.run" in held
    assert "cloudtasks.queues.get" not in held and "cloudtasks.tasks.delete" not in held
    assert "cloudtasks.tasks.run" not in iam.policy_permissions(
        "user:a@example.com", policy, QUEUE + "x", NOW
    )


def test_act_as_on_the_account_project_or_every_project() -> None:
    iam = _iam(
        bindings=[
            {"project": "p", "role": "roles/iam.serviceAccountUser", "members": ["user:a@example.com"]},
            {"project": "*", "role": "roles/owner", "members": ["user:root@example.com"]},
        ]
    )
    assert iam.may_act_as("user:a@example.com", "run@p.iam.gserviceaccount.com", NOW)
    assert not iam.may_act_as("user:a@example.com", "run@other.iam.gserviceaccount.com", NOW)
    assert not iam.may_act_as("user:a@example.com", "emulated@email.com", NOW)
    assert iam.may_act_as("user:root@example.com", "emulated@email.com", NOW)


def test_conditions_fail_closed() -> None:
    assert holds(
        'resource.type == "cloudtasks.googleapis.com/Queue"', QUEUE, "cloudtasks.googleapis.com/Queue", NOW
    )
    assert not holds("request.auth.claims.x == 1", QUEUE, "t", NOW)  # an attribute tasksd does not know
    assert not holds('"a string"', QUEUE, "t", NOW)  # not a boolean
    with pytest.raises(ConditionError):
        compile_condition("resource.name ==")
    with pytest.raises(ConditionError, match="longer than"):
        compile_condition("true && " * 2000 + "true")
