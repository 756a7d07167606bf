"""The google.longrunning.Operations service, shared by every API version: the operations
that answer BatchCreateTasks and BatchDeleteTasks can be fetched again by name."""

from __future__ import annotations

from google.longrunning import operations_pb2

from tasksd.api.rpc import Rpc
from tasksd.api.versions import OPERATIONS
from tasksd.model.names import OperationName
from tasksd.service import TasksService


class OperationsApi:
    def __init__(self, service: TasksService) -> None:
        self.service = service

    async def GetOperation(self, request: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
        name = OperationName.parse(request.name, "name")
        return operations_pb2.Operation.FromString(await self.service.require_operation(name))

    def rpcs(self) -> dict[str, Rpc]:
        return {
            "GetOperation": Rpc(
                OPERATIONS,
                "GetOperation",
                operations_pb2.GetOperationRequest,
                operations_pb2.Operation,
                self.GetOperation,
            )
        }
