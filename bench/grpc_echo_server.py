"""A bare grpc.aio server that answers every unary call with the request's own bytes: the
floor any gRPC service on this stack pays, against which bench/grpc_create.py compares."""

from __future__ import annotations

import sys
from typing import Any

import grpc


class Echo(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
        async def echo(request: bytes, context: Any) -> bytes:
            return request

        return grpc.unary_unary_rpc_method_handler(echo)  # no serializers: bytes in, bytes out


async def main(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Echo(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
