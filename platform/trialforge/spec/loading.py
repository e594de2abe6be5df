"""Loading a spec: YAML, `key=value` overrides, and pydantic's errors on one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trialforge.errors import SpecError
from trialforge.spec.families import FAMILY_CONFIGS
from trialforge.spec.space import DISTRIBUTIONS
from trialforge.spec.sweep import SweepSpec


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """Load a YAML spec, apply `key=value` overrides, validate. Raises `SpecError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"spec {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raise SpecError(f"spec {path} is empty: write at least 'name: my-sweep' (trialforge "
                        "init writes an example to start from)")
    if not isinstance(raw, dict):
        raise SpecError(f"spec {path}: the top level must be a mapping like 'name: my-sweep'")
    return parse_spec(raw, overrides, source=str(path))


def parse_spec(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "spec"
) -> SweepSpec:
    """Validate a spec given as a dict (after `key=value` overrides). Raises `SpecError`."""
    raw = apply_overrides(raw, overrides)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"invalid {source}: {format_errors(exc)}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of `raw` with `a.b.c=value` words applied; values parse as YAML."""
    result = _deep_copy(raw)
    for word in overrides:
        key, sep, text = word.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(f"override {word!r}: write key=value, e.g. train.epochs=3")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            raise SpecError(f"override {word!r}: the value is not valid YAML") from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"override {word!r}: {part} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


def format_errors(exc: ValidationError) -> str:
    """Pydantic's errors as `field.path: message` parts on one line."""
    parts = []
    for error in exc.errors():
        loc = _readable_loc(error["loc"], error["type"])
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "unknown_family" and not isinstance(error["input"], dict):
            loc = loc.removesuffix(".family")
            msg = f"write a mapping like {{family: cnn}} (got {error['input']!r})"
        elif error["type"] == "unknown_family":
            msg = f"{error['input'].get('family')!r}: {msg}"
        elif error["type"] not in ("value_error", "missing", "unknown_distribution"):
            msg = f"{msg} (got {error['input']!r})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _readable_loc(loc: tuple[int | str, ...], error_type: str) -> str:
    names = [str(part) for part in loc]
    # Drop the union tags pydantic inserts (`model.cnn.dropout` -> `model.dropout`).
    if len(names) > 1 and names[0] == "model" and names[1] in (*FAMILY_CONFIGS, "custom"):
        del names[1]
    if len(names) > 3 and names[:2] == ["search", "space"] and names[3] in DISTRIBUTIONS:
        del names[3]
    if error_type == "unknown_family":
        names.append("family")
    return ".".join(names)
