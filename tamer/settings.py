"""Settings: flat dataclasses of knobs, each field typed, defaulted, documented and bounded, with one generic
validation, a ``--flag`` per field and a JSON round trip. ``tamer.config.Config`` (a run) and
``tamer.live.LiveConfig`` (the live window) are Settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin, get_type_hints

from tamer.errors import ConfigError
from tamer.io import write_json_atomic


@dataclass(frozen=True)
class Bounds:
    """Where a number may lie: ``low``/``high`` ends (None = unbounded), each closed unless marked open."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False

    def holds(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, kind: type) -> str:
        """'in [0, 1]', '> 0 and finite', '>= 0', 'a finite number', ... (floats are always finite)."""
        low = f"{'>' if self.low_open else '>='} {self.low}" if self.low is not None else ""
        high = f"{'<' if self.high_open else '<='} {self.high}" if self.high is not None else ""
        if low and high:
            return (
                f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
            )
        if low or high:
            return (low or high) + (" and finite" if kind is float else "")
        return "a finite number" if kind is float else "an integer"


def knob(
    default,
    doc: str,
    choices: tuple | None = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    builtins: tuple[str, ...] | str | None = None,
):
    """A config field: its default, its ``--help`` text and what values it takes.

    Choices are best given as the field's type, ``Literal["a", "b"]`` (``choices`` is the older spelling).
    Numbers take bounds ``ge``/``gt`` (>=, >) and ``le``/``lt`` (<=, <); a float must be finite besides.
    ``builtins``: a str field that takes a built-in name or a plug-in ``package.module:Name``; the names as a
    tuple, or as ``"module:ATTR"``, a registry (dict or tuple) imported when first checked.
    """
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise TypeError("give one low bound (ge or gt) and one high bound (le or lt)")
    bounds = Bounds(
        gt if gt is not None else ge, gt is not None, lt if lt is not None else le, lt is not None
    )
    return field(
        default=default, metadata={"doc": doc, "choices": choices, "bounds": bounds, "builtins": builtins}
    )


def rule(method: Callable) -> Callable:
    """Marks a ``Settings`` method as a cross-field rule: ``validate`` calls it after checking every field
    on its own; it raises ConfigError (one line naming the flags) when the rule is broken."""
    method.is_rule = True  # type: ignore[attr-defined]
    return method


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def field_choices(cls: type, f: dataclasses.Field) -> tuple | None:
    """A field's choices: the values of its ``Literal[...]`` type, else its knob's ``choices``."""
    hint = type_hints(cls).get(f.name)
    return get_args(hint) if get_origin(hint) is Literal else f.metadata.get("choices")


@functools.cache
def builtin_names(spec: tuple[str, ...] | str) -> tuple[str, ...]:
    if isinstance(spec, str):  # "module:ATTR", imported only when a value is checked
        module, _, attr = spec.partition(":")
        return tuple(getattr(importlib.import_module(module), attr))
    return tuple(spec)


def is_plugin_spec(value: str) -> bool:
    """``package.module:Name`` (maybe with ``(k=v, ...)`` after it): the form a plug-in is named in."""
    module, sep, name = value.partition(":")
    return bool(sep and module.strip() and name.strip())


def flag_name(name: str) -> str:
    return name.replace("_", "-")


def check_field(cls: type, f: dataclasses.Field, value) -> None:
    """One field's value against what its declaration allows: type, choices, built-in names, bounds."""
    flag, kind = flag_name(f.name), type(f.default)
    if kind in (int, float):
        real = numbers.Integral if kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, real):
            raise ConfigError(f"{flag} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        bounds = f.metadata.get("bounds") or Bounds()
        if (kind is float and not math.isfinite(value)) or not bounds.holds(value):
            raise ConfigError(f"{flag} must be {bounds.describe(kind)}, got {value}")
        return
    choices = field_choices(cls, f)
    if choices is not None and value not in choices:
        raise ConfigError(f"unknown {flag} {value!r}; known: {', '.join(map(str, choices))}")
    builtins = f.metadata.get("builtins")
    if builtins is not None:
        names = builtin_names(builtins)
        if not isinstance(value, str) or (value not in names and not is_plugin_spec(value)):
            raise ConfigError(
                f"unknown {flag} {value!r}; known: {', '.join(names)}, or package.module:ClassName"
            )


class Settings:
    """A dataclass of knobs that round-trips through JSON, checking names and types on the way in."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # every subclass is a dataclass
    KIND = "config"  # how errors name it

    def validate(self):
        """Every field against its declaration (type, choices, bounds, finiteness), then the class's
        cross-field rules (methods marked ``@rule``); the first problem is one ConfigError line."""
        cls = type(self)
        for f in dataclasses.fields(self):
            check_field(cls, f, getattr(self, f.name))
        for klass in reversed(cls.__mro__):
            for method in vars(klass).values():
                if getattr(method, "is_rule", False):
                    method(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None):
        """Build from a dict (a saved config.json, a TOML table), checking names and types."""
        source = source or cls.KIND
        if not isinstance(data, dict):
            kind = "null" if data is None else type(data).__name__
            raise ConfigError(f"{source}: a {cls.KIND} must be a table of fields ({{...}}), got {kind}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for name, value in data.items():
            if name not in fields:
                raise ConfigError(f"{source}: unknown {cls.KIND} field {name!r}")
            values[name] = coerce(name, value, type(fields[name].default), source)
        return cls(**values).validate()

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {cls.KIND} {path}: {e}") from None
        return cls.from_dict(data, str(path))


S = TypeVar("S", bound=Settings)


def coerce(name: str, value, kind: type, source: str):
    """Check a value's type against the field's (ints are accepted where floats are expected)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: field {name!r} must be {kind.__name__}, got {value!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type[Settings]) -> None:
    """One ``--flag`` per field of ``cls``; its help is the field's doc and default."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind, choices = type(f.default), field_choices(cls, f)
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["doc"]
            )
            continue
        listed = f" One of: {', '.join(choices)}." if choices else ""
        help_text = f"{f.metadata['doc']}{listed} (default: {f.default!r})"
        parser.add_argument(
            flag, type=kind, default=None, choices=choices, metavar=f.name.upper(), help=help_text
        )


def config_from_args(args: argparse.Namespace, cls: type[S], base: S | None = None) -> S:
    """``base`` (``cls``'s defaults, or a saved one) with every flag the user gave applied on top."""
    values = (base or cls()).to_dict()
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return cls(**values).validate()
