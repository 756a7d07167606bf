"""Reading a REST request body: its JSON (bounded in depth) and the message it fills."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import Message

from tasksd.api.rest import jsonpb
from tasksd.model.errors import InvalidArgument

_decode_json = msgspec.json.Decoder().decode


def read_json(body: bytes, max_depth: int = 100) -> Any:
    """The body's JSON value: msgspec reads strict JSON; what it refuses (NaN, lone
    surrogates, errors) is read by the json module, which also words the errors. Arrays and
    objects nested more than ``max_depth`` deep are refused, as protobuf's JSON parser does."""
    document: Any = None
    too_deep = False
    try:
        document = _decode_json(body)
    except RecursionError:  # both parsers stop at the interpreter's limit (1,000 frames)
        too_deep = True
    except ValueError:  # msgspec.DecodeError, UnicodeDecodeError
        try:
            document = json.loads(body)
        except RecursionError:
            too_deep = True
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"Invalid JSON payload received. {exc}.") from None
    # Nesting deeper takes more than twice as many bytes and more brackets than the limit: most
    # bodies pass on their length or two counts; a long one is walked (its strings are not read).
    size = len(body)
    if (
        not too_deep
        and size > 2 * max_depth
        and (size > 2048 or body.count(b"[") + body.count(b"{") > max_depth)
    ):
        level = [document] if type(document) is dict or type(document) is list else []
        for _ in range(max_depth):  # the containers of one level at a time, never recursing
            if not level:
                break
            level = [
                v
                for c in level
                for v in (c.values() if type(c) is dict else c)
                if type(v) is dict or type(v) is list
            ]
        too_deep = bool(level)
    if too_deep:
        raise InvalidArgument(
            f"Invalid JSON payload received. Nesting too deep (more than {max_depth} levels)."
        )
    return document


def parse_into(document: dict[str, Any], message: Message) -> None:
    try:
        jsonpb.parse_dict(document, message)
    except jsonpb.InvalidValue as exc:
        raise InvalidArgument(str(exc)) from None
    except json_format.ParseError as exc:
        raise InvalidArgument(f"Invalid JSON payload received. {exc}".split("\n")[0]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgument(f"Invalid JSON payload received. {exc}") from None
