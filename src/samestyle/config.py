"""Config composition: each component owns a frozen dataclass with defaults; a run config nests them.

TOML files and dotted CLI overrides (``--set model.dim=128``) are applied on top of the defaults; unknown
keys are errors with "did you mean". The resolved config is saved beside every artifact.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from samestyle.errors import ConfigError

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where) if len(args) == 1 else value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        inner = typing.get_args(tp)
        item_tp = inner[0] if inner else Any
        return tuple(_coerce(v, item_tp, where) for v in value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return bool(value)
    if tp in (int, float, str):
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "config") -> C:
    """Build dataclass ``cls`` from a (partial) mapping; missing keys keep their defaults."""
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(types_), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'.{hint} Known: {', '.join(types_)}")
    kwargs = {k: _coerce(v, types_[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{key}': '{part}' is not a table")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=3`` -> ("a.b", 3), the value read as TOML when it parses, else as a plain string."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value, e.g. model.dim=128")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def read_config_data(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The raw nested dict of a TOML file (``{}`` without one) with dotted overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    return data


def load_config(cls: type[C], path: str | Path | None = None, overrides: Sequence[str] = ()) -> C:
    """Defaults <- TOML file <- dotted overrides."""
    return from_dict(cls, read_config_data(path, overrides), str(path or "config"))


def dump_toml(cfg: Any, prefix: str = "") -> str:
    """Serialise a (nested) config dataclass as TOML: scalars first, nested configs as [tables]."""
    scalars, tables = [], []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f.name, value))
        elif value is not None:  # TOML has no null: an absent key means "default" (None)
            scalars.append(f"{f.name} = {_toml_value(value)}")
    out = "\n".join(scalars) + ("\n" if scalars else "")
    for name, sub in tables:
        out += f"\n[{prefix}{name}]\n" + dump_toml(sub, prefix=f"{prefix}{name}.")
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} to TOML")
