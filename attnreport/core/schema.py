"""Checks that untrusted JSON or TOML values have the types a dataclass declares.

A manifest comes from a model folder and a config from a user: a value of the wrong type must be
a one-line error that names it, not a TypeError deep in a later stage (``batch_size = "16"``) or,
worse, a value that silently means something else (``scenes = "false"`` is truthy).
"""

from __future__ import annotations

import dataclasses
import types
import typing


def shape_problem(cls: type, data, where: str, *, skip: frozenset[str] = frozenset()) -> str | None:
    """What is wrong with `data` as the fields of the dataclass `cls` (None when nothing is):
    an object with the required keys, no unknown ones, each value of its annotated type (fields
    named in `skip` are the caller's to check)."""
    if not isinstance(data, dict):
        return f"{where or 'the manifest'} is a {type(data).__name__}, not an object"
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = sorted(set(data) - set(fields) - skip)
    if unknown:
        return f"unknown key {where}{unknown[0]!r}"
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in data:
            if required:
                return f"{where}{name} is missing"
            continue
        problem = value_problem(data[name], hints[name], f"{where}{name}")
        if problem:
            return problem
    return None


def value_problem(value, hint, where: str) -> str | None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [value_problem(value, a, where) for a in args if a is not type(None)]
        return None if None in problems else problems[0]
    if dataclasses.is_dataclass(hint):
        return shape_problem(hint, value, f"{where}.")
    wanted = origin or hint
    if wanted is typing.Any:
        return None
    ok = {
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    }.get(wanted, lambda v: isinstance(v, wanted))
    if not ok(value):
        return f"{where} is {type(value).__name__}, not {getattr(wanted, '__name__', wanted)}"
    if wanted is list and args:
        for i, item in enumerate(value):
            if problem := value_problem(item, args[0], f"{where}[{i}]"):
                return problem
    if wanted is dict and args:
        for key, item in value.items():
            if problem := value_problem(item, args[1], f"{where}[{key!r}]"):
                return problem
    return None
