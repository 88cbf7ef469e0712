"""A small registry of named plugins: model backends, judges, attacks and shifts.

Built-in entries are registered as ``"module:attribute"`` strings, so nothing heavy is imported
until a plugin is used. Third-party packages add entries through the entry-point group
``cai2.<kind>`` (e.g. ``cai2.shifts``), with the value in the same ``"module:attribute"`` form.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar, cast

from cai2.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names → factories for one kind of plugin.

    Args:
        kind: Plural noun used in messages and in the entry-point group, e.g. ``"shifts"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | Callable[..., T]] = {}
        self._loaded_entry_points = False

    def register(
        self, name: str, target: str | Callable[..., T] | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]] | None:
        """Register ``target`` under ``name``; without ``target`` acts as a decorator."""
        if target is not None:
            self._add(name, target)
            return None

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self._add(name, factory)
            return factory

        return decorate

    def _add(self, name: str, target: str | Callable[..., T]) -> None:
        if name in self._entries and self._entries[name] is not target:
            raise ConfigError(f"{self.kind} `{name}` is registered twice")
        self._entries[name] = target

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=f"cai2.{self.kind}"):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``.

        Raises:
            ConfigError: when ``name`` is unknown (the message lists the known names).
        """
        self._load_entry_points()
        try:
            target = self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown {self.kind[:-1]} `{name}`; known: {known}") from None
        if isinstance(target, str):
            loaded = cast("Callable[..., T]", _import_target(target))
            self._entries[name] = loaded
            return loaded
        return target


def _import_target(spec: str) -> Callable[..., object]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"plugin `{spec}` needs the module `{exc.name}`; install it "
            f"(for the llama.cpp backend: `pip install 'cai2[llamacpp]'`)"
        ) from exc
    target = getattr(module, attribute, None)
    if target is None:
        raise ConfigError(f"plugin `{spec}`: `{module_name}` has no attribute `{attribute}`")
    return cast("Callable[..., object]", target)
