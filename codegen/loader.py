"""Load a spec file: YAML with source positions, JSON Schema validation, then the model.

Every problem becomes a :class:`daqwire.errors.SpecError` naming the file, the line and
column of the offending YAML node and the path inside the spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from daqwire.errors import SpecError

__all__ = ["Marks", "RawSpec", "format_path", "read_spec", "spec_schema"]

PathT = tuple[str | int, ...]


def format_path(path: PathT) -> str:
    """``("messages", "window", "fields", 1, "type")`` -> ``messages.window.fields[1].type``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Marks:
    """1-based (line, column) of every node of a YAML document, keyed by its path."""

    file: str
    positions: dict[PathT, tuple[int, int]] = field(default_factory=dict)

    def error(self, path: PathT, message: str) -> SpecError:
        """A SpecError located at ``path`` (or at its nearest ancestor that has a mark)."""
        probe = path
        while probe not in self.positions and probe:
            probe = probe[:-1]
        line, column = self.positions.get(probe, (None, None)) if probe else (1, 1)
        return SpecError(message, file=self.file, line=line, column=column, path=format_path(path))


@dataclass
class RawSpec:
    """A schema-valid spec document with the marks and digest of its source file."""

    path: Path
    display_name: str
    data: dict[str, Any]
    marks: Marks
    sha256: str


@cache
def spec_schema() -> dict[str, Any]:
    """The JSON Schema every spec must satisfy (``specs/spec.schema.json``)."""
    text = resources.files("daqwire.specs").joinpath("spec.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: PathT, marks: Marks, file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)
            if key in seen:
                mark = key_node.start_mark
                raise SpecError(
                    f"duplicate key {key!r}",
                    file=file,
                    line=mark.line + 1,
                    column=mark.column + 1,
                    path=format_path((*path, key)),
                )
            seen.add(key)
            child = (*path, key)
            marks.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(loader, value_node, child, marks, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            marks.positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(loader, item, child, marks, file)


def _load_yaml(text: str, file: str) -> tuple[Any, Marks]:
    marks = Marks(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("the file is empty", file=file, line=1, column=1)
        _walk(loader, node, (), marks, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise SpecError(
            f"invalid YAML: {exc.problem or exc}", file=file, line=line, column=column
        ) from None
    finally:
        loader.dispose()
    return data, marks


def _schema_error(err: jsonschema.ValidationError, marks: Marks, data: Any) -> SpecError:
    path: PathT = tuple(err.absolute_path)
    message = err.message
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {})) if isinstance(err.schema, dict) else set()
        unknown = sorted(str(k) for k in err.instance if k not in allowed)
        if unknown:
            path = (*path, unknown[0])
            message = f"unknown key {unknown[0]!r}"
            if allowed:
                message += f" (allowed here: {', '.join(sorted(allowed))})"
    elif err.schema is False:
        # jsonschema leaves the path empty for a `false` subschema; find the value by identity
        found = _find(data, err.instance, ()) if not path else path
        if found:
            path = found
            family = data.get("family") if isinstance(data, dict) else None
            message = f"key {path[-1]!r} is not allowed in the {family} family"
    return marks.error(path, message)


def _find(node: Any, target: Any, path: PathT) -> PathT | None:
    """The path of the value that *is* ``target`` (identity) inside ``node``."""
    items: list[tuple[str | int, Any]]
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return None
    for key, value in items:
        if value is target:
            return (*path, key)
        hit = _find(value, target, (*path, key))
        if hit:
            return hit
    return None


def _best_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The deepest, then first-in-document error: the one a person should fix first."""

    def leaves(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
        if err.context:
            return [leaf for sub in err.context for leaf in leaves(sub)]
        return [err]

    candidates = [leaf for err in errors for leaf in leaves(err)]
    best: jsonschema.ValidationError | None = jsonschema.exceptions.best_match(candidates)
    assert best is not None
    return best


def read_spec(path: str | Path, *, display_name: str | None = None) -> RawSpec:
    """Read and schema-validate one spec file (no semantic checks yet)."""
    path = Path(path)
    name = display_name or path.as_posix()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror}", file=name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 at byte {exc.start}", file=name) from None
    data, marks = _load_yaml(text, name)
    if not isinstance(data, dict):
        raise SpecError("a spec is a YAML mapping at the top level", file=name, line=1, column=1)
    validator = jsonschema.Draft202012Validator(spec_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise _schema_error(_best_error(errors), marks, data)
    return RawSpec(path, name, data, marks, hashlib.sha256(raw).hexdigest())
