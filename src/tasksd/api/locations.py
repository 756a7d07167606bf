"""The google.cloud.location.Locations service, shared by every API version."""

from __future__ import annotations

from google.cloud.location import locations_pb2

from tasksd.api.rpc import Rpc
from tasksd.model.errors import InvalidArgument
from tasksd.model.location import Location
from tasksd.model.names import LocationName, ProjectName
from tasksd.service import TasksService

SERVICE = "google.cloud.location.Locations"


def _location_pb(location: Location) -> locations_pb2.Location:
    location_id = location.name.location
    return locations_pb2.Location(
        name=location.name.path,
        location_id=location_id,
        display_name=location.display_name or location_id,
        labels={"cloud.googleapis.com/region": location_id},
    )


class LocationsApi:
    def __init__(self, service: TasksService) -> None:
        self.service = service

    async def ListLocations(
        self, request: locations_pb2.ListLocationsRequest
    ) -> locations_pb2.ListLocationsResponse:
        project = ProjectName.parse(request.name, "name")
        if request.filter:
            raise InvalidArgument("tasksd does not support a filter in ListLocations yet.")
        page = await self.service.list_locations(project, request.page_size, request.page_token)
        return locations_pb2.ListLocationsResponse(
            locations=[_location_pb(item) for item in page.items], next_page_token=page.next_page_token
        )

    async def GetLocation(self, request: locations_pb2.GetLocationRequest) -> locations_pb2.Location:
        return _location_pb(await self.service.get_location(LocationName.parse(request.name, "name")))

    def rpcs(self) -> dict[str, Rpc]:
        return {
            "ListLocations": Rpc(
                SERVICE,
                "ListLocations",
                locations_pb2.ListLocationsRequest,
                locations_pb2.ListLocationsResponse,
                self.ListLocations,
            ),
            "GetLocation": Rpc(
                SERVICE,
                "GetLocation",
                locations_pb2.GetLocationRequest,
                locations_pb2.Location,
                self.GetLocation,
            ),
        }
