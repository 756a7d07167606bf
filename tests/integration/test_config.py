"""Queues declared in --config are created, or updated to match, when the server starts."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import PARENT, Server, discovery_client, gapic_client, refused_start

YAML = f"""
locations: [us-central1, moon-base1]
queue_reuse_delay: 0s
queues:
  - name: {PARENT}/queues/emails
    appEngineHttpTarget:
      appEngineRoutingOverride: {{service: mailer}}
    rateLimits: {{maxTasksDispatchedPerSecond: 5, maxConcurrentTasks: 2}}
    retryConfig: {{maxAttempts: 7, minBackoff: 1s, maxBackoff: 20s, maxDoublings: 2}}
  - name: {PARENT}/queues/work
    pullTarget: {{}}
  - name: {PARENT}/queues/hooks
    httpTarget:
      uriOverride: {{host: hooks.internal, port: "8080"}}
"""

TOML = f"""
locations = ["us-central1"]

[[queues]]
name = "{PARENT}/queues/emails"
appEngineHttpTarget = {{}}
rateLimits = {{ maxTasksDispatchedPerSecond = 50 }}
"""


def test_yaml_then_toml_declares_and_updates(tmp_path: Path) -> None:
    config = tmp_path / "tasksd.yaml"
    config.write_text(YAML)
    db = f"sqlite:///{tmp_path / 'tasks.db'}"
    server = Server(db, config=config).start()
    api = discovery_client(server.url)
    queues = api.projects().locations().queues()
    emails = queues.get(name=f"{PARENT}/queues/emails").execute()
    assert emails["rateLimits"] == {
        "maxTasksDispatchedPerSecond": 5,
        "maxBurstSize": 5,
        "maxConcurrentTasks": 2,
    }
    assert emails["retryConfig"]["maxAttempts"] == 7 and emails["retryConfig"]["maxBackoff"] == "20s"
    assert emails["appEngineHttpTarget"]["appEngineRoutingOverride"]["service"] == "mailer"
    assert "pullTarget" in queues.get(name=f"{PARENT}/queues/work").execute()
    hooks = gapic_client(server.url).get_queue(name=f"{PARENT}/queues/hooks")
    assert (
        hooks.http_target.uri_override.host == "hooks.internal"
        and hooks.http_target.uri_override.port == 8080
    )
    locations = api.projects().locations().list(name="projects/test-project").execute()["locations"]
    assert [loc["locationId"] for loc in locations] == ["moon-base1", "us-central1"]
    server.stop()

    toml = tmp_path / "tasksd.toml"
    toml.write_text(TOML)
    server = Server(db, config=toml).start()
    queues = discovery_client(server.url).projects().locations().queues()
    emails = queues.get(name=f"{PARENT}/queues/emails").execute()
    assert emails["rateLimits"]["maxTasksDispatchedPerSecond"] == 50
    assert emails["retryConfig"]["maxAttempts"] == 100  # updated to match the file: defaults again
    assert "appEngineRoutingOverride" not in emails["appEngineHttpTarget"]
    server.stop()


def test_bad_config_is_a_clear_startup_error(tmp_path: Path) -> None:
    too_fast = f"{{name: {PARENT}/queues/q, rateLimits: {{maxTasksDispatchedPerSecond: 900}}}}"
    cases = {
        "unknown: 1\n": "unknown config key",
        "queues: [{name: nonsense}]\n": "queues[0]",
        f"queues: [{too_fast}]\n": "max_tasks_dispatched_per_second",
        "queues: [: :\n": "not valid YAML",
        "app_engine_services: [a, b]\n": "app_engine_services must be a mapping",
        "http_port: eighty\n": "http_port must be a port number",
    }
    for text, expected in cases.items():
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        assert expected in refused_start(config)
