"""IAM conditions: the CEL expressions of version 3 policies, compiled once and evaluated
against the attributes tasksd knows of a request.

The attributes are ``resource.name`` (the queue, or the location for location-level
methods), ``resource.type``, ``resource.service`` and ``request.time``. An expression that
does not compile is refused when it is set; one that names any other attribute, or does not
evaluate to a boolean, grants nothing (IAM fails closed).
"""

from __future__ import annotations

import functools
from datetime import datetime

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError

SERVICE = "cloudtasks.googleapis.com"
MAX_EXPRESSION_LENGTH = 12_800  # Google's limit on a condition's expression
_ENV = celpy.Environment()
_ATTRIBUTES = {"resource": {"name", "type", "service"}, "request": {"time"}}


class ConditionError(ValueError):
    """A condition tasksd cannot evaluate; the message says why."""


@functools.lru_cache(maxsize=1024)
def compile_condition(expression: str) -> celpy.Runner:
    """The runnable program of a condition's expression. Raises ConditionError."""
    if not expression.strip():
        raise ConditionError("the condition's expression is empty.")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ConditionError(f"the condition's expression is longer than {MAX_EXPRESSION_LENGTH} characters.")
    try:
        return _ENV.program(_ENV.compile(expression))
    except (CELParseError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise ConditionError(f"the condition's expression is not valid CEL: {first}") from None
    except Exception as exc:  # the CEL compiler's own faults are refusals too
        raise ConditionError(
            f"the condition's expression cannot be compiled: {type(exc).__name__}."
        ) from None


def holds(expression: str, resource_name: str, resource_type: str, now: datetime) -> bool:
    """Whether the condition is true for a request on ``resource_name`` at ``now``."""
    try:
        program = compile_condition(expression)
    except ConditionError:
        return False
    activation = {
        "resource": celtypes.MapType(
            {
                celtypes.StringType("name"): celtypes.StringType(resource_name),
                celtypes.StringType("type"): celtypes.StringType(resource_type),
                celtypes.StringType("service"): celtypes.StringType(SERVICE),
            }
        ),
        "request": celtypes.MapType({celtypes.StringType("time"): celtypes.TimestampType(now)}),
    }
    try:
        result = program.evaluate(activation)
    except Exception:  # an attribute tasksd does not know, a type error: grants nothing
        return False
    return isinstance(result, celtypes.BoolType) and bool(result)
