"""The v2beta2 REST surface is the whole discovery document: every method has an RPC, and
every property of every schema a method takes or answers is a field of the message that
carries it (so no request the document allows is refused as an unknown field)."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tasksd.api.cloudtasks import CloudTasksApi
from tasksd.api.locations import LocationsApi
from tasksd.api.operations import OperationsApi
from tasksd.api.rest.routes import load_discovery
from tasksd.api.v2beta2 import REST_VERSION

DOCUMENT = load_discovery("v2beta2")
SCHEMAS: dict[str, Any] = DOCUMENT["schemas"]
# Free-form in the document (``additionalProperties``): Any, Struct or a map.
FREE_FORM = {"Location.metadata", "Operation.metadata", "Operation.response", "Status.details"}


def _methods(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(resource.get("methods", {}).values())
    for child in resource.get("resources", {}).values():
        found += _methods(child)
    return found


def _rpcs() -> dict[tuple[str, str], Any]:
    apis = [CloudTasksApi(None, REST_VERSION), LocationsApi(None), OperationsApi(None)]  # type: ignore[arg-type]
    return {(rpc.service, rpc.name): rpc for api in apis for rpc in api.rpcs().values()}


RPCS = _rpcs()
METHODS = {method["id"]: method for method in _methods(DOCUMENT)}


def _missing(schema: str, message: Descriptor, seen: set[str]) -> list[str]:
    """The properties of ``schema`` (and of the schemas it names) that ``message`` lacks."""
    if schema in seen:
        return []
    seen.add(schema)
    fields = {f.json_name: f for f in message.fields}
    missing = []
    for name, spec in SCHEMAS[schema].get("properties", {}).items():
        field = fields.get(name)
        if field is None:
            missing.append(f"{schema}.{name}")
            continue
        ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
        if ref and f"{schema}.{name}" not in FREE_FORM and field.type == FieldDescriptor.TYPE_MESSAGE:
            missing += _missing(ref, field.message_type, seen)
    return missing


def test_every_method_has_an_rpc() -> None:
    unserved = [mid for mid in METHODS if REST_VERSION.rest_methods.get(mid) not in RPCS]
    assert unserved == []


@pytest.mark.parametrize("method_id", sorted(METHODS))
def test_every_property_has_a_field(method_id: str) -> None:
    method = METHODS[method_id]
    rpc = RPCS[REST_VERSION.rest_methods[method_id]]
    request = method.get("request", {}).get("$ref")
    missing = []
    if request is not None:
        carrier = rpc.request.DESCRIPTOR
        if carrier.name != request:  # the body fills one field of the request
            carrier = next(
                f.message_type for f in carrier.fields if f.message_type and f.message_type.name == request
            )
        missing += _missing(request, carrier, set())
    response = method.get("response", {}).get("$ref")
    if response is not None and response != "Empty":
        missing += _missing(response, rpc.response.DESCRIPTOR, set())
    assert missing == []


def test_task_retry_config_is_the_queue_retry_config() -> None:
    task = REST_VERSION.messages["GetTask"][1].DESCRIPTOR
    assert (
        task.fields_by_name["retry_config"].message_type.full_name == "google.cloud.tasks.v2beta2.RetryConfig"
    )
