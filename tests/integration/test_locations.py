"""Locations: those in use plus the configured defaults."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from google.api_core import exceptions
from googleapiclient.errors import HttpError

from tests.integration.conftest import Server, gapic_client


def test_list_and_get(api: Any, server: Server) -> None:
    project = f"loc-{uuid.uuid4().hex[:8]}"
    locations = api.projects().locations()
    listed = locations.list(name=f"projects/{project}").execute()["locations"]
    ids = [loc["locationId"] for loc in listed]
    assert ids == sorted(ids) and "us-central1" in ids and "mars-north9" not in ids
    parent = f"projects/{project}/locations/mars-north9"
    locations.queues().create(parent=parent, body={"name": f"{parent}/queues/q", "pullTarget": {}}).execute()
    ids = [loc["locationId"] for loc in locations.list(name=f"projects/{project}").execute()["locations"]]
    assert "mars-north9" in ids
    got = locations.get(name=parent).execute()
    assert got == {
        "name": parent,
        "locationId": "mars-north9",
        "displayName": "mars-north9",
        "labels": {"cloud.googleapis.com/region": "mars-north9"},
    }
    page = locations.list(name=f"projects/{project}", pageSize=2).execute()
    assert len(page["locations"]) == 2 and page["nextPageToken"]
    with pytest.raises(HttpError) as info:
        locations.get(name=f"projects/{project}/locations/venus-east1").execute()
    assert info.value.status_code == 404

    client = gapic_client(server.url)
    from google.cloud.location import locations_pb2

    response = client.list_locations(locations_pb2.ListLocationsRequest(name=f"projects/{project}"))
    assert "mars-north9" in [loc.location_id for loc in response.locations]
    with pytest.raises(exceptions.NotFound):
        client.get_location(
            locations_pb2.GetLocationRequest(name=f"projects/{project}/locations/venus-east1")
        )
