"""Authentication through the official clients, over plain HTTP/gRPC and over TLS: service
account key files (self-signed JWTs and the token endpoint), API keys, static tokens and
OIDC ID tokens of an issuer the test serves."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth.transport.grpc
import google.auth.transport.requests
import google_auth_httplib2
import grpc
import httplib2
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import tasks_v2, tasks_v2beta2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tasksd.auth.keyfile import new_key_file
from tests.integration.certs import TestCa
from tests.integration.conftest import Server
from tests.integration.test_node import NODE_DIR, node_with_client

PROJECT = "auth-project"
PARENT = f"projects/{PROJECT}/locations/us-central1"
CI = f"ci@{PROJECT}.iam.gserviceaccount.com"
WEB = f"web@{PROJECT}.iam.gserviceaccount.com"
MISSING = "Request is missing required authentication credential."
INVALID = "Request had invalid authentication credentials."
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class _Issuer:
    """An OIDC issuer: an RSA key and a JWKS document served on loopback."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        document = json.dumps({"keys": [dict(jwk, kid="k1", use="sig", alg="RS256")]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.jwks_uri = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.issuer = "https://idp.example"

    def token(self, audience: str = "tasksd", lifetime: int = 600, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + lifetime, "sub": "s-1"} | claims
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[_Issuer]:
    served = _Issuer()
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module", params=["plain", "tls"])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, issuer: _Issuer
) -> Iterator[Server]:
    """tasksd with authentication enforced, over plain HTTP/gRPC and then over TLS."""
    folder = tmp_path_factory.mktemp(f"auth-{request.param}")
    ca = None
    config: dict[str, Any] = {}
    if request.param == "tls":
        authority = TestCa(folder)
        issued = authority.issue("server", ["127.0.0.1", "localhost"])
        config["tls"] = {"cert_file": str(issued.cert), "key_file": str(issued.key)}
        ca = authority.cert
    server = Server(f"sqlite:///{folder / 'tasksd.db'}", folder / "tasksd.yaml", ca=ca)
    new_key_file(CI, f"{server.url}/token", str(folder / "ci.json"))
    new_key_file(f"stranger@{PROJECT}.iam.gserviceaccount.com", f"{server.url}/token", str(folder / "x.json"))
    os.environ["TASKSD_TEST_OPS_TOKEN"] = "ops-secret"
    config["auth"] = {
        "mode": "enforce",
        "service_account_keys": ["ci.json"],
        "tokens": [
            {"token": "s3cret", "principal": "user:ci@example.com"},
            {"token_env": "TASKSD_TEST_OPS_TOKEN", "principal": "user:ops@example.com"},
        ],
        "api_keys": [{"key": "local-key", "principal": f"serviceAccount:{WEB}"}],
        "oidc_issuers": [{"issuer": issuer.issuer, "audience": "tasksd", "jwks_uri": issuer.jwks_uri}],
        "bindings": [
            {"project": PROJECT, "role": "roles/cloudtasks.admin", "members": [f"serviceAccount:{CI}"]},
            {"project": "*", "role": "roles/cloudtasks.viewer", "members": [f"serviceAccount:{WEB}"]},
            {
                "project": PROJECT,
                "role": "roles/cloudtasks.queueAdmin",
                "members": [
                    "user:ci@example.com",
                    "user:ops@example.com",
                    "user:ann@example.com",
                    "serviceAccount:robot@other.iam.gserviceaccount.com",
                    "principal://idp.example/subject/s-1",
                    "principal://https://idp.example/subject/s-3",
                ],
            },
        ],
    }
    (folder / "tasksd.yaml").write_text(json.dumps(config))
    if ca is not None:
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca)  # google-cloud-tasks REST (requests) trusts the test CA
    server.start()
    server.folder = folder  # type: ignore[attr-defined]
    yield server
    server.stop()
    os.environ.pop("REQUESTS_CA_BUNDLE", None)


def _key(server: Server, name: str = "ci.json", scopes: list[str] | None = None) -> Any:
    folder: Path = server.folder  # type: ignore[attr-defined]
    return service_account.Credentials.from_service_account_file(str(folder / name), scopes=scopes)


def _rest(server: Server, credentials: Any) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport="rest", credentials=credentials, client_options=ClientOptions(api_endpoint=server.url)
    )


def _channel_credentials(server: Server) -> grpc.ChannelCredentials:
    if server.ca is None:
        return grpc.local_channel_credentials()
    return grpc.ssl_channel_credentials(root_certificates=server.ca.read_bytes())


def _grpc(server: Server, credentials: Any) -> tasks_v2.CloudTasksClient:
    channel = google.auth.transport.grpc.secure_authorized_channel(
        credentials,
        google.auth.transport.requests.Request(),
        f"127.0.0.1:{server.grpc_port}",
        ssl_credentials=_channel_credentials(server),
    )
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def _bare_grpc(server: Server) -> tasks_v2.CloudTasksClient:
    """A gRPC client that sends no credentials of its own (calls may pass metadata)."""
    if server.ca is None:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    else:
        channel = grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", _channel_credentials(server))
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def _discovery(server: Server, credentials: Any = None, key: str | None = None) -> Any:
    http = httplib2.Http(ca_certs=str(server.ca) if server.ca else None)
    if credentials is not None:
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
    return build(
        "cloudtasks",
        "v2beta2",
        http=http,
        developerKey=key,
        discoveryServiceUrl=f"{server.url}/$discovery/rest?version={{apiVersion}}",
        static_discovery=False,
        cache_discovery=False,
    )


def _verify(server: Server) -> str | bool:
    return str(server.ca) if server.ca else True


def _queue_id() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


def test_key_file_self_signed_jwt_over_rest_and_grpc(secured: Server) -> None:
    """google-cloud-tasks given a key file signs its own JWTs (REST: aud; gRPC here: scope)."""
    rest = _rest(secured, _key(secured))
    queue = rest.create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/{_queue_id()}"})
    task = rest.create_task(parent=queue.name, task={"http_request": {"url": "http://127.0.0.1:9/x"}})
    over_grpc = _grpc(secured, _key(secured, scopes=SCOPES))
    assert over_grpc.get_task(name=task.name).name == task.name
    assert queue.name in [q.name for q in over_grpc.list_queues(parent=PARENT)]


def test_key_file_through_the_token_endpoint(secured: Server) -> None:
    """google-api-python-client exchanges the key file's signed assertion at its token_uri
    (tasksd's POST /token) for an access token, batches included."""
    credentials = _key(secured, scopes=SCOPES)
    api = _discovery(secured, credentials)
    name = f"{PARENT}/queues/{_queue_id()}"
    queues = api.projects().locations().queues()
    queues.create(parent=PARENT, body={"name": name, "pullTarget": {}}).execute()
    assert jwt.get_unverified_header(credentials.token)["typ"] == "at+jwt"  # from tasksd's endpoint
    got: list[Any] = []
    batch = api.new_batch_http_request(callback=lambda _id, response, error: got.append(error or response))
    for _ in range(2):
        batch.add(queues.get(name=name))
    batch.execute()
    assert [g["name"] for g in got] == [name, name]


def test_token_endpoint_grants(secured: Server) -> None:
    key = json.loads((secured.folder / "ci.json").read_text())  # type: ignore[attr-defined]

    def assertion(audience: str, kid: str | None = None, signer: Any = None) -> str:
        now = int(time.time())
        claims = {"iss": CI, "aud": audience, "scope": SCOPES[0], "iat": now, "exp": now + 600}
        return jwt.encode(
            claims,
            signer or key["private_key"],
            algorithm="RS256",
            headers={"kid": kid or key["private_key_id"]},
        )

    def grant(assertion_value: str, grant_type: str = "urn:ietf:params:oauth:grant-type:jwt-bearer") -> Any:
        form = {"grant_type": grant_type, "assertion": assertion_value}
        return httpx.post(f"{secured.url}/token", data=form, verify=_verify(secured))

    for audience in ("https://oauth2.googleapis.com/token", f"{secured.url}/token"):
        answer = grant(assertion(audience))
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] > 3000
        listed = httpx.get(
            f"{secured.url}/v2/{PARENT}/queues",
            headers={"authorization": f"Bearer {token}"},
            verify=_verify(secured),
        )
        assert listed.status_code == 200, listed.text
    assert grant(assertion("https://example.com/token")).json()["error"] == "invalid_grant"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert grant(assertion(f"{secured.url}/token", signer=other)).json()["error"] == "invalid_grant"
    assert grant("not-a-jwt").status_code == 400
    assert (
        grant(assertion(f"{secured.url}/token"), "client_credentials").json()["error"]
        == "unsupported_grant_type"
    )


def test_unlisted_key_and_foreign_audience_are_refused(secured: Server) -> None:
    with pytest.raises(exceptions.Unauthorized, match=INVALID):
        _rest(secured, _key(secured, "x.json")).list_queues(parent=PARENT)
    key = json.loads((secured.folder / "ci.json").read_text())  # type: ignore[attr-defined]
    now = int(time.time())
    claims = {"iss": CI, "sub": CI, "aud": "https://pubsub.googleapis.com/", "iat": now, "exp": now + 600}
    foreign = jwt.encode(
        claims, key["private_key"], algorithm="RS256", headers={"kid": key["private_key_id"]}
    )
    answer = httpx.get(
        f"{secured.url}/v2/{PARENT}/queues",
        headers={"authorization": f"Bearer {foreign}"},
        verify=_verify(secured),
    )
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_api_keys(secured: Server) -> None:
    name = f"{PARENT}/queues/{_queue_id()}"
    _rest(secured, _key(secured)).create_queue(parent=PARENT, queue={"name": name})
    queues = _discovery(secured, key="local-key").projects().locations().queues()
    assert queues.get(name=name).execute()["name"] == name  # roles/cloudtasks.viewer on "*"
    with pytest.raises(HttpError) as denied:
        queues.pause(name=name, body={}).execute()
    assert denied.value.resp.status == 403 and "cloudtasks.queues.pause" in str(denied.value)
    with pytest.raises(HttpError) as unknown:
        _discovery(secured, key="wrong-key").projects().locations().queues().get(name=name).execute()
    assert unknown.value.resp.status == 400
    assert "API key not valid. Please pass a valid API key." in str(unknown.value)
    header = httpx.get(
        f"{secured.url}/v2/{name}", headers={"x-goog-api-key": "local-key"}, verify=_verify(secured)
    )
    assert header.status_code == 200
    bare = _bare_grpc(secured)
    assert bare.get_queue(name=name, metadata=[("x-goog-api-key", "local-key")]).name == name
    with pytest.raises(exceptions.InvalidArgument, match="API key not valid"):
        bare.get_queue(name=name, metadata=[("x-goog-api-key", "nope")])


def test_static_tokens(secured: Server) -> None:
    client = _rest(secured, oauth2_credentials.Credentials("s3cret"))
    name = f"{PARENT}/queues/{_queue_id()}"
    assert client.create_queue(parent=PARENT, queue={"name": name}).name == name
    with pytest.raises(exceptions.Forbidden, match=r'"cloudtasks\.tasks\.create"'):
        client.create_task(parent=name, task={"http_request": {"url": "http://127.0.0.1:9/"}})
    for token in ("s3cret", "ops-secret"):  # the second comes from an environment variable
        answer = httpx.get(f"{secured.url}/v2/{name}?access_token={token}", verify=_verify(secured))
        assert answer.status_code == 200, answer.text
    bare = _bare_grpc(secured)
    assert bare.get_queue(name=name, metadata=[("authorization", "Bearer ops-secret")]).name == name
    with pytest.raises(exceptions.Unauthorized, match=INVALID):
        bare.get_queue(name=name, metadata=[("authorization", "Bearer not-a-token")])
    with pytest.raises(exceptions.Unauthorized, match=MISSING):
        bare.get_queue(name=name)
    anonymous = httpx.get(f"{secured.url}/v2/{name}", verify=_verify(secured))
    assert anonymous.status_code == 401 and anonymous.json()["error"]["message"].startswith(MISSING)


def test_oidc_id_tokens(secured: Server, issuer: _Issuer) -> None:
    def status(token: str) -> int:
        answer = httpx.get(
            f"{secured.url}/v2/{PARENT}/queues",
            headers={"authorization": f"Bearer {token}"},
            verify=_verify(secured),
        )
        return answer.status_code

    assert status(issuer.token(email="ann@example.com")) == 200  # user:ann@example.com
    assert status(issuer.token(email="robot@other.iam.gserviceaccount.com")) == 200  # serviceAccount:
    assert status(issuer.token()) == 200  # no email: principal://idp.example/subject/s-1
    assert status(issuer.token(sub="s-3")) == 200  # the member spells the issuer as its URL
    assert status(issuer.token(sub="s-2")) == 403  # authenticated, granted nothing
    assert status(issuer.token(audience="someone-else", email="ann@example.com")) == 401
    assert status(issuer.token(lifetime=-120, email="ann@example.com")) == 401
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert status(issuer.token(key=forged, email="ann@example.com")) == 401


def test_open_endpoints(secured: Server) -> None:
    verify = _verify(secured)
    assert httpx.get(f"{secured.url}/healthz", verify=verify).status_code == 200
    assert httpx.get(f"{secured.url}/.well-known/jwks.json", verify=verify).json()["keys"]
    assert httpx.get(f"{secured.url}/.well-known/openid-configuration", verify=verify).status_code == 200
    if secured.ca is None:
        channel = grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}")
    else:
        channel = grpc.secure_channel(f"127.0.0.1:{secured.grpc_port}", _channel_credentials(secured))
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    if secured.ca is not None:  # over TLS, the plain HTTP port speaks TLS only
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{secured.http_port}/healthz", timeout=5)


def test_batch_parts_carry_the_outer_credentials(secured: Server) -> None:
    """A v2beta2 HTTP batch with a static token on the outer request only."""
    name = f"{PARENT}/queues/{_queue_id()}"
    tasks_v2beta2.CloudTasksClient(
        transport="rest", credentials=_key(secured), client_options=ClientOptions(api_endpoint=secured.url)
    ).create_queue(parent=PARENT, queue={"name": name, "pull_target": {}})
    boundary = "b0undary"
    part = f"--{boundary}\r\nContent-Type: application/http\r\n\r\nGET /v2beta2/{name} HTTP/1.1\r\n\r\n\r\n"
    body = (part * 2 + f"--{boundary}--\r\n").encode()
    headers = {"content-type": f"multipart/mixed; boundary={boundary}"}
    allowed = httpx.post(
        f"{secured.url}/batch",
        content=body,
        headers=headers | {"authorization": "Bearer s3cret"},
        verify=_verify(secured),
    )
    assert allowed.status_code == 200 and allowed.text.count("HTTP/1.1 200") == 2, allowed.text
    anonymous = httpx.post(f"{secured.url}/batch", content=body, headers=headers, verify=_verify(secured))
    assert anonymous.status_code == 401


def test_node_client_with_a_key_file(secured: Server) -> None:
    """@google-cloud/tasks given the key file: its REST fallback, and over TLS its gRPC too."""
    node = node_with_client()
    folder: Path = secured.folder  # type: ignore[attr-defined]
    ca = str(secured.ca) if secured.ca else "-"
    queue_id = _queue_id()
    env = (
        dict(os.environ, NODE_EXTRA_CA_CERTS=ca, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=ca)
        if secured.ca
        else dict(os.environ)
    )
    done = subprocess.run(
        [
            node,
            "check_auth.js",
            str(secured.grpc_port),
            str(secured.http_port),
            str(folder / "ci.json"),
            ca,
            queue_id,
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"rest ok {PARENT}/queues/{queue_id}-rest {PARENT}/queues/{queue_id}-rest/tasks/" in done.stdout
    assert "anonymous refused 16" in done.stdout or "anonymous refused 401" in done.stdout, done.stdout
    if secured.ca:
        assert f"grpc ok {PARENT}/queues/{queue_id}-grpc" in done.stdout, done.stdout


def test_client_certificates_when_tls_names_a_client_ca(tmp_path: Path) -> None:
    """With tls.client_ca_file, both ports want a client certificate signed by that CA (and
    calls still need credentials)."""
    authority = TestCa(tmp_path)
    issued = authority.issue("server", ["127.0.0.1"])
    client = authority.issue("client", ["client"], client=True)
    config = {
        "tls": {
            "cert_file": str(issued.cert),
            "key_file": str(issued.key),
            "client_ca_file": str(authority.cert),
        },
        "auth": {
            "tokens": [{"token": "s3cret", "principal": "user:ci@example.com"}],
            "bindings": [
                {"project": PROJECT, "role": "roles/cloudtasks.viewer", "members": ["user:ci@example.com"]}
            ],
        },
    }
    (tmp_path / "tasksd.yaml").write_text(json.dumps(config))
    server = Server(f"sqlite:///{tmp_path / 'tasksd.db'}", tmp_path / "tasksd.yaml", ca=authority.cert)
    cert = (str(client.cert), str(client.key))
    server.client_cert = cert
    proc_server = server.start()
    try:
        url = f"{proc_server.url}/v2/{PARENT}/queues"
        headers = {"authorization": "Bearer s3cret"}
        assert httpx.get(url, headers=headers, verify=server.verify()).status_code == 200
        assert httpx.get(url, verify=server.verify()).status_code == 401
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, headers=headers, verify=str(authority.cert), timeout=5)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=authority.cert.read_bytes(),
            private_key=client.key.read_bytes(),
            certificate_chain=client.cert.read_bytes(),
        )
        channel = grpc.secure_channel(f"127.0.0.1:{proc_server.grpc_port}", credentials)
        grpc_client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        assert (
            list(grpc_client.list_queues(parent=PARENT, metadata=[("authorization", "Bearer s3cret")])) == []
        )
        bare = grpc.secure_channel(
            f"127.0.0.1:{proc_server.grpc_port}",
            grpc.ssl_channel_credentials(root_certificates=authority.cert.read_bytes()),
        )
        with pytest.raises(exceptions.ServiceUnavailable):
            tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=bare)).list_queues(
                parent=PARENT, metadata=[("authorization", "Bearer s3cret")], timeout=10, retry=None
            )
    finally:
        proc_server.stop()


def test_v2beta2_rest_only_methods_are_guarded(secured: Server) -> None:
    """The methods only v2beta2's REST surface has (its discovery document's) need the same
    permissions as in v2: a queue admin may not create tasks or read the CMEK config."""
    headers = {"Authorization": "Bearer s3cret"}
    name = f"{PARENT}/queues/{_queue_id()}"
    base = f"{secured.url}/v2beta2"
    made = httpx.post(
        f"{base}/{PARENT}/queues",
        json={"name": name, "pullTarget": {}},
        headers=headers,
        verify=_verify(secured),
    )
    assert made.status_code == 200, made.text
    batch = {"requests": [{"task": {"name": f"{name}/tasks/t", "pullMessage": {}}}]}
    for method, path, body, permission in [
        ("POST", f"{name}/tasks:batchCreate", batch, "cloudtasks.tasks.create"),
        ("POST", f"{name}/tasks:batchDelete", {"names": [f"{name}/tasks/t"]}, "cloudtasks.tasks.delete"),
        ("GET", f"{PARENT}/cmekConfig", None, "cloudtasks.cmekConfig.get"),
        ("PATCH", f"{PARENT}/cmekConfig?updateMask=kmsKey", {"kmsKey": ""}, "cloudtasks.cmekConfig.update"),
    ]:
        denied = httpx.request(method, f"{base}/{path}", json=body, headers=headers, verify=_verify(secured))
        assert denied.status_code == 403, denied.text
        assert f'"{permission}"' in denied.json()["error"]["message"]
