"""Plug-ins: a user's class or function named as ``package.module:Name``, wherever the framework takes a name
(blends, β schedules, feedback sources, oracles, callbacks).

A spec may carry keyword arguments for the constructor, as Python literals in parentheses:
``mypkg.blends:Mixed(weight=0.5, mode="soft")``. The framework also offers context (the config, the env, a
random generator, ...) by keyword; a constructor receives those of them its signature names.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from tamer.errors import ConfigError


def is_plugin(name: str) -> bool:
    return ":" in name


def split_specs(text: str) -> list[str]:
    """Comma-separated specs, commas inside parentheses kept: ``a:B(x=1, y=2),c:D`` -> two specs."""
    specs, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            specs.append(text[start:i])
            start = i + 1
    specs.append(text[start:])
    return [s.strip() for s in specs if s.strip()]


def parse_spec(spec: str, what: str) -> tuple[str, dict[str, Any]]:
    """``package.module:Name(k=v, ...)`` -> ("package.module:Name", {k: v}); values are Python literals."""
    spec = spec.strip()
    if "(" not in spec and ")" not in spec:
        return spec, {}
    if not spec.endswith(")") or "(" not in spec:
        raise ConfigError(f"{what} {spec!r}: unbalanced parentheses; expected Name(k=v, ...)")
    target, _, args = spec.partition("(")
    try:
        call = ast.parse(f"f({args}", mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError("one group of arguments")
        if call.args or any(kw.arg is None for kw in call.keywords):
            raise ValueError("only name=value arguments")
        names = [kw.arg for kw in call.keywords]
        if len(set(names)) < len(names):
            raise ValueError(f"{max(names, key=names.count)!r} given twice")
        kwargs: dict[str, Any] = {}
        for kw in call.keywords:
            try:
                kwargs[str(kw.arg)] = ast.literal_eval(kw.value)
            except ValueError:
                raise ValueError(
                    f"{kw.arg}= is not a literal (a number, string, True/False/None, list)"
                ) from None
    except (SyntaxError, ValueError) as e:
        raise ConfigError(f"{what} {spec!r}: arguments must be name=literal pairs ({e})") from None
    return target.strip(), kwargs


def load_object(spec: str, what: str) -> Any:
    """The object ``package.module:Name`` names; one ConfigError line if the module does not import (for any
    reason: its own code may raise) or lacks the name."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {spec!r}: expected package.module:Name")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # a user's module may fail in any way while it is imported
        raise ConfigError(f"cannot load {what} {spec!r}: {type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"cannot load {what} {spec!r}: {module_name} has no {attr!r}") from None
    return obj


def construct(spec: str, what: str, **context: Any) -> Any:
    """Build the plug-in ``spec`` names: its own keyword arguments, plus the ``context`` keywords its
    signature accepts. A constructor that raises is one ConfigError line, not a traceback."""
    target, kwargs = parse_spec(spec, what)
    factory = load_object(target, what)
    if not callable(factory):
        raise ConfigError(f"{what} {target!r} is not callable")
    return call_with_context(factory, f"{what} {spec!r}", kwargs, context)


def call_with_context(factory: Any, label: str, kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: no context
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    offered = {k: v for k, v in context.items() if (takes_all or k in params) and k not in kwargs}
    try:
        return factory(**offered, **kwargs)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"{label} failed when built: {type(e).__name__}: {e}") from None


def require_methods(obj: Any, methods: tuple[str, ...], label: str, hint: str = "") -> Any:
    """``obj`` if it has every one of ``methods``, else one ConfigError line naming what it lacks."""
    missing = [f"{m}()" for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise ConfigError(f"{label} lacks {', '.join(missing)}{hint}")
    return obj
