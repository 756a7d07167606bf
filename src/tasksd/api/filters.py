"""ListQueues filters, evaluated against the wire message of each version.

The documented syntax is that of logging filters; this implements the part a queue needs:
comparisons ``field OP value`` with OP one of ``: = != < <= > >=``, where ``field`` is a
dotted path of the version's Queue message (snake_case or camelCase) and ``field : *``
tests presence, joined by ``AND`` (or juxtaposition), ``OR`` and ``NOT``/``-``, with
parentheses, nested at most ``MAX_DEPTH`` deep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tasksd.model.errors import InvalidArgument

Predicate = Callable[[Message], bool]

_TOKEN = re.compile(
    r"""\s*(?:(?P<op><=|>=|!=|[:=<>()])|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[^\s:=<>!()"]+))"""
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
MAX_DEPTH = 100
"""How deep ``NOT``, ``-`` and parentheses may nest: the parser recurses once per level."""


def _shown(text: str) -> str:
    """Filter text as an error message quotes it: a long one is cut short."""
    return repr(text if len(text) <= 200 else text[:200] + "…")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidArgument(f"Invalid filter {_shown(text)}: unexpected text at {_shown(text[pos:])}.")
        out.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return out


def parse_filter(text: str, message_type: type[Message]) -> Predicate:
    """Compile a filter for messages of ``message_type``.

    Raises:
        InvalidArgument: the filter is malformed or names a field the message does not have.
    """
    parser = _Parser(_tokens(text), message_type, text)
    if not parser.tokens:
        return lambda message: True
    predicate = parser.expression()
    if parser.pos != len(parser.tokens):
        parser.fail(f"unexpected {parser.tokens[parser.pos]!r}")
    return predicate


class _Parser:
    def __init__(self, tokens: list[str], message_type: type[Message], text: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.message_type = message_type
        self.text = text

    def fail(self, why: str) -> None:
        raise InvalidArgument(f"Invalid filter {_shown(self.text)}: {why}.")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            self.fail("it ends too early")
            raise AssertionError  # fail() always raises
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "OR":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda m: any(t(m) for t in terms))

    def conjunction(self) -> Predicate:
        terms = [self.unary()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda m: all(t(m) for t in terms))

    def unary(self) -> Predicate:
        token = self.peek()
        if token not in ("NOT", "-", "("):
            return self.comparison()
        self.take()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"NOT, - and parentheses nest more than {MAX_DEPTH} deep")
        if token == "(":
            inner = self.expression()
            if self.take() != ")":
                self.fail("a parenthesis is not closed")
            self.depth -= 1
            return inner
        negated = self.unary()
        self.depth -= 1
        return lambda m: not negated(m)

    def comparison(self) -> Predicate:
        path = self.take()
        if path in _OPERATORS or path in ("(", ")"):
            self.fail(f"expected a field name, got {path!r}")
        fields = self.resolve(path)
        op = self.take()
        if op not in _OPERATORS:
            self.fail(f"expected an operator after {path!r}, got {op!r}")
        value = self.take()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif value in _OPERATORS or value in ("(", ")"):
            self.fail(f"expected a value after {path!r} {op}")
        if op == ":" and value == "*":
            return lambda m: _present(m, fields)
        return _compare(fields, op, value, self)

    def resolve(self, path: str) -> list[FieldDescriptor]:
        descriptor = self.message_type.DESCRIPTOR
        fields: list[FieldDescriptor] = []
        for part in path.split("."):
            if descriptor is None:
                self.fail(f"{path!r} goes inside a field that has no fields")
            name = _CAMEL.sub("_", part).lower()
            field = descriptor.fields_by_name.get(name)
            if field is None:
                self.fail(f"{descriptor.name} has no field {part!r}")
            fields.append(field)
            descriptor = field.message_type
        return fields


_OPERATORS = (":", "=", "!=", "<", "<=", ">", ">=")


def _walk(message: Message, fields: list[FieldDescriptor]) -> tuple[bool, Any, FieldDescriptor]:
    """(present, value, last field) of a path in a message."""
    current: Any = message
    for field in fields[:-1]:
        if not current.HasField(field.name):
            return False, None, fields[-1]
        current = getattr(current, field.name)
    last = fields[-1]
    value = getattr(current, last.name)
    if last.message_type is not None and not _is_repeated(last):
        return current.HasField(last.name), value, last
    return bool(value), value, last


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _present(message: Message, fields: list[FieldDescriptor]) -> bool:
    present, value, field = _walk(message, fields)
    if field.message_type is not None and not _is_repeated(field):
        return present
    return bool(value)


def _compare(fields: list[FieldDescriptor], op: str, text: str, parser: _Parser) -> Predicate:
    last = fields[-1]
    if last.message_type is not None or _is_repeated(last):
        parser.fail(f"{last.name} cannot be compared with {op}")
    expected: Any
    if last.enum_type is not None:
        if text.lstrip("-").isdigit():
            expected = int(text)
        elif text in last.enum_type.values_by_name:
            expected = last.enum_type.values_by_name[text].number
        else:
            parser.fail(f"{text!r} is not a value of {last.enum_type.name}")
    elif last.type == FieldDescriptor.TYPE_BOOL:
        if text.lower() not in ("true", "false"):
            parser.fail(f"{last.name} takes true or false, got {text!r}")
        expected = text.lower() == "true"
    elif last.type == FieldDescriptor.TYPE_STRING:
        expected = text
    else:
        try:
            expected = float(text)
        except ValueError:
            parser.fail(f"{last.name} takes a number, got {text!r}")

    def test(message: Message) -> bool:
        _, value, _ = _walk(message, fields)
        if value is None:
            return False
        if op in (":", "="):
            return bool(value == expected)
        if op == "!=":
            return bool(value != expected)
        try:
            return bool(_ORDER[op](value, expected))
        except TypeError:
            return False

    return test


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
