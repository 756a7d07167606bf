"""A bare grpc.aio server that answers every unary call with the request's own bytes: the
floor any gRPC service on this stack pays, against which bench/grpc_create.py compares.

    python bench/grpc_echo_server.py PORT [--durable PATH]

With ``--durable`` it also commits each request to SQLite before answering (bench/durable_log.py).
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from durable_log import DurableLog


class Echo(grpc.GenericRpcHandler):
    def __init__(self, log: DurableLog | None) -> None:
        self._log = log

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
        log = self._log

        async def echo(request: bytes, context: Any) -> bytes:
            if log is not None:
                await log.append(request)
            return request

        return grpc.unary_unary_rpc_method_handler(echo)  # no serializers: bytes in, bytes out


async def main(port: int, log: DurableLog | None) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Echo(log),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--durable", metavar="PATH", help="commit each request to this SQLite file first")
    args = parser.parse_args()
    uvloop.run(main(args.port, DurableLog(args.durable) if args.durable else None))
