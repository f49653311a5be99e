"""YAML files validated by pydantic, with errors that name the file, line and field path.

An operator who mistypes a radius should read
``registry.yaml:14: residents.R001.geofences[1].circle.radius_m: must be > 0``, not a traceback.
Messages never echo the offending value: it may be a name or a phone number.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml if built
Loc = tuple[str | int, ...]


class ConfigError(ValueError):
    """A configuration file is invalid; ``str()`` lists every problem, one per line."""

    def __init__(self, path: Path | str, problems: Iterable[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Any) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    short = {
        "greater_than": "must be > {gt}",
        "greater_than_equal": "must be >= {ge}",
        "less_than": "must be < {lt}",
        "less_than_equal": "must be <= {le}",
        "missing": "is required",
        "extra_forbidden": "is not a known field",
    }
    if kind in short:
        return short[kind].format(
            **{k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()}
        )
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _line_index(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*loc, k)] = key.start_mark.line + 1
            _line_index(value, (*loc, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*loc, i), out)


def _nearest_line(lines: dict[Loc, int], loc: Loc) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Parse and validate ``path`` as ``model``; raise ConfigError naming file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:  # a watcher keeps the version in force on ConfigError
        raise ConfigError(
            path, [f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"]
        ) from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(
            path, [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        lines: dict[Loc, int] = {}  # only on failure: composing again costs as much as loading
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            _line_index(node, (), lines)
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc: Loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            line = _nearest_line(lines, loc)
            where = f"{path}:{line}" if line else str(path)
            field = format_loc(loc) or "(top level)"
            problems.append(f"{where}: {field}: {_message(error)}")
        raise ConfigError(path, problems) from None
