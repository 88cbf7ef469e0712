"""YAML configuration files validated by pydantic, with errors that name file, line and key.

Every YAML file cai2 reads (recipes, constitutions, stage configs) goes through
:func:`load_yaml_model` so a mistake is reported the same way everywhere, e.g.
``recipe.yaml:12 at `stages.1.config.batch_size`: Input should be a valid integer``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from cai2.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)
# libyaml's safe loader when PyYAML was built with it: same results, several times faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KeyPath = tuple[str | int, ...]


class StrictModel(BaseModel):
    """Base for cai2 config objects: unknown keys are errors; assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class YamlDocument:
    """A parsed YAML document that remembers the line of every key and item.

    Args:
        text: The YAML source.
        file: Where the text came from, used in error messages.
    """

    def __init__(self, text: str, file: str | Path | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.lines: dict[KeyPath, int] = {}
        try:
            node = yaml.compose(text, Loader=_LOADER)
            self.data: Any = yaml.load(text, Loader=_LOADER)  # _LOADER is a safe loader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(
                f"malformed YAML: {exc.problem or exc}", file=self.file, line=line
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"malformed YAML: {exc}", file=self.file) from exc
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: KeyPath) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self._index(value_node, (*path, key))
                # The key's own line is more useful than the value's for "unknown key" errors.
                self.lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, (*path, index))

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """Line of ``path``, or of its nearest ancestor that appears in the file."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get(())

    def validate(self, model: type[ModelT], *, root: KeyPath = ()) -> ModelT:
        """Validate the document (or the part under ``root``) as ``model``.

        Raises:
            ConfigError: for the first validation problem, with file, line and key path.
        """
        data: Any = self.data
        for part in root:
            data = data[part]
        return validate_with_location(model, data, self, root=root)


def format_key(path: Iterable[str | int]) -> str:
    """``("stages", 1, "config")`` → ``stages.1.config``."""
    return ".".join(str(p) for p in path)


def validate_with_location(
    model: type[ModelT], data: Any, doc: YamlDocument | None = None, *, root: KeyPath = ()
) -> ModelT:
    """``model.model_validate(data)``, turning a ValidationError into a located ConfigError."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if isinstance(p, str | int))
        # pydantic puts the union-member / tagged-union name into loc; drop parts that are not keys.
        full = _real_path(data, loc)
        path = (*root, *full)
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key `{loc[-1]}`" if loc else "unknown key"
        elif first["type"] == "missing":
            message = f"missing required key `{loc[-1]}`" if loc else "missing required key"
        raise ConfigError(
            message,
            file=doc.file if doc else None,
            line=doc.line_of(path) if doc else None,
            key=format_key(path) or None,
        ) from exc


def _real_path(data: Any, loc: KeyPath) -> KeyPath:
    """Keep only the parts of a pydantic error location that index into the data."""
    out: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            out.append(part)
            current = current[part]
        elif (
            isinstance(current, dict | list)
            and isinstance(part, str)
            and not _looks_like_type_tag(part)
        ):
            # A missing or unknown key: still name it, then stop descending.
            out.append(part)
            break
        # Union tags such as "function-after[...]" or model names are skipped.
    return tuple(out)


def _looks_like_type_tag(part: str) -> bool:
    return "[" in part or part[:1].isupper()


def load_yaml_model(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read ``path`` and validate it as ``model``.

    Raises:
        ConfigError: if the file is missing, is not valid YAML, or does not match ``model``.
    """
    doc = read_yaml(path)
    return doc.validate(model)


def read_yaml(path: str | Path) -> YamlDocument:
    """Parse a YAML file, keeping line numbers for later validation errors."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=p) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("file is not UTF-8 text", file=p) from exc
    return YamlDocument(text, file=p)
