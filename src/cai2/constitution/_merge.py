"""Inheritance: merge a constitution with the chain it ``extends`` and apply its overrides.

Precedence, from strongest to weakest:

1. the child's ``overrides`` (applied last, in file order);
2. the child's layers (reusing a parent's layer id needs ``inherit: replace`` or ``extend``);
3. the parent's flattened constitution (its own overrides already applied).

A principle id may appear only once in the merged result; a child changes an inherited principle
through an override, never by redeclaring it. Locked principles (hard limits) may be tightened but
never relaxed or disabled.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cai2.config import KeyPath
from cai2.constitution._checks import check_constitution, config_error, iter_principles
from cai2.constitution._schema import Constitution, Layer, Override, Principle


@dataclass(frozen=True)
class AppliedOverride:
    """An override that was applied while flattening, kept to explain the result."""

    constitution: str
    action: str
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line, e.g. ``tightened by acme (severity → critical): patients rely on it``."""
        verb = {"tighten": "tightened", "relax": "relaxed", "disable": "disabled"}[self.action]
        detail = ", ".join(
            f"{key} → {value.value if hasattr(value, 'value') else '…'}"
            for key, value in self.changes.items()
        )
        return (
            f"{verb} by {self.constitution}"
            + (f" ({detail})" if detail else "")
            + (f": {self.reason}")
        )


@dataclass(frozen=True)
class MergedLayer:
    """A layer of the flattened constitution and the constitution it came from."""

    layer: Layer
    source: str


@dataclass(frozen=True)
class FlattenedConstitution:
    """A constitution with its ``extends`` chain merged and every override applied.

    Attributes:
        name: Name of the most derived constitution.
        version: Its version.
        description: Its description.
        lineage: Names from the most derived to the root, e.g. ``("acme", "cai-2.0")``.
        layers: Merged layers in declaration order (parents' first).
        overrides: Applied tighten / relax overrides by principle id, oldest first.
        disabled: Principles removed by a ``disable`` override, by id.
    """

    name: str
    version: str
    description: str
    lineage: tuple[str, ...]
    layers: tuple[MergedLayer, ...]
    overrides: dict[str, tuple[AppliedOverride, ...]]
    disabled: dict[str, AppliedOverride]

    def principles(self) -> Iterator[tuple[str, Principle, int]]:
        """Every principle and sub-principle as ``(layer_id, principle, level)``, pre-order."""
        for merged in self.layers:
            for principle, _, level in iter_principles(merged.layer.principles, ()):
                yield merged.layer.id, principle, level

    def principle_ids(self) -> list[str]:
        """Ids of every principle and sub-principle in order."""
        return [principle.id for _, principle, _ in self.principles()]

    def layer(self, layer_id: str) -> MergedLayer:
        """The merged layer with ``layer_id`` (KeyError if absent)."""
        for merged in self.layers:
            if merged.layer.id == layer_id:
                return merged
        raise KeyError(layer_id)


def flatten_constitution(constitution: Constitution) -> FlattenedConstitution:
    """Merge ``constitution`` with its parents and apply overrides.

    Raises:
        ConfigError: for a layer that clashes with a parent's, a duplicate principle id, or an
            override that names an unknown principle or breaks a rule of its action.
    """
    check_constitution(constitution)
    parent = constitution.parent
    if parent is None and constitution.extends is not None:
        # Built in Python rather than loaded: fetch the parent the same way the loader would.
        from cai2.constitution._loader import load_constitution

        parent = load_constitution(constitution.extends)
    if parent is not None:
        base = flatten_constitution(parent)
        layers = list(base.layers)
        overrides = {key: tuple(value) for key, value in base.overrides.items()}
        disabled = dict(base.disabled)
        lineage = (constitution.name, *base.lineage)
    else:
        layers, overrides, disabled, lineage = [], {}, {}, (constitution.name,)

    for index, layer in enumerate(constitution.layers):
        layers = _merge_layer(constitution, layers, index, layer, parent.name if parent else "")
    _check_unique_ids(constitution, layers)
    # A child may declare a new principle under an id its parent disabled; it is live again.
    live = {p.id for m in layers for p, _, _ in iter_principles(m.layer.principles, ())}
    disabled = {key: value for key, value in disabled.items() if key not in live}

    for index, override in enumerate(constitution.overrides):
        layers, applied = _apply_override(constitution, layers, index, override, disabled)
        if override.action == "disable":
            disabled[override.principle] = applied
        else:
            overrides[override.principle] = (*overrides.get(override.principle, ()), applied)
    return FlattenedConstitution(
        name=constitution.name,
        version=constitution.version,
        description=constitution.description,
        lineage=lineage,
        layers=tuple(layers),
        overrides=overrides,
        disabled=disabled,
    )


def _merge_layer(
    constitution: Constitution,
    layers: list[MergedLayer],
    index: int,
    layer: Layer,
    parent_name: str,
) -> list[MergedLayer]:
    path: KeyPath = ("layers", index)
    position = next((i for i, m in enumerate(layers) if m.layer.id == layer.id), None)
    if position is None:
        if layer.inherit is not None:
            raise config_error(
                constitution,
                (*path, "inherit"),
                f"`inherit: {layer.inherit}` but parent `{parent_name}` has no layer "
                f"`{layer.id}`; remove `inherit` to add a new layer",
            )
        return [*layers, MergedLayer(layer=layer, source=constitution.name)]
    if layer.inherit is None:
        raise config_error(
            constitution,
            (*path, "id"),
            f"layer `{layer.id}` is already defined by `{layers[position].source}`; set "
            "`inherit: replace` or `inherit: extend`, or choose a new id",
        )
    if layer.inherit == "replace":
        merged = layer.model_copy(update={"inherit": None})
    else:
        inherited = layers[position].layer
        update: dict[str, Any] = {
            name: getattr(layer, name)
            for name in ("description", "activation", "priority")
            if name in layer.model_fields_set
        }
        update["principles"] = [*inherited.principles, *layer.principles]
        merged = inherited.model_copy(update=update)
    result = list(layers)
    result[position] = MergedLayer(layer=merged, source=constitution.name)
    return result


def _check_unique_ids(constitution: Constitution, layers: list[MergedLayer]) -> None:
    """A child's principle may not reuse an id that survives from its parent."""
    own_paths = {
        principle.id: p_path
        for index, layer in enumerate(constitution.layers)
        for principle, p_path, _ in iter_principles(
            layer.principles, ("layers", index, "principles")
        )
    }
    seen: set[str] = set()
    for merged in layers:
        for principle, _, _ in iter_principles(merged.layer.principles, ()):
            if principle.id in seen:
                path = own_paths.get(principle.id, ())
                raise config_error(
                    constitution,
                    (*path, "id"),
                    f"principle id `{principle.id}` is already used by a parent constitution; "
                    "change an inherited principle with an `overrides` entry, or pick a new id",
                )
            seen.add(principle.id)


def _apply_override(
    constitution: Constitution,
    layers: list[MergedLayer],
    index: int,
    override: Override,
    disabled: dict[str, AppliedOverride],
) -> tuple[list[MergedLayer], AppliedOverride]:
    path: KeyPath = ("overrides", index)
    target = _find(layers, override.principle)
    if target is None:
        if override.principle in disabled:
            message = (
                f"principle `{override.principle}` was already "
                f"{disabled[override.principle].describe()}"
            )
        else:
            known = [p.id for m in layers for p, _, _ in iter_principles(m.layer.principles, ())]
            close = difflib.get_close_matches(override.principle, known, n=3)
            hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            message = f"unknown principle `{override.principle}`{hint}"
        raise config_error(constitution, (*path, "principle"), message)
    source, principle = target
    if principle.locked and override.action != "tighten":
        raise config_error(
            constitution,
            (*path, "action"),
            f"`{principle.id}` is a hard limit (locked by `{source}`): it may be tightened but "
            f"not {'relaxed' if override.action == 'relax' else 'disabled'}",
        )
    changes = override.changed_fields
    new_severity = changes.get("severity")
    if new_severity is not None:
        if override.action == "tighten" and new_severity.rank < principle.severity.rank:
            raise config_error(
                constitution,
                (*path, "severity"),
                f"`tighten` cannot lower severity from {principle.severity.value} to "
                f"{new_severity.value}; use `action: relax`",
            )
        if override.action == "relax" and new_severity.rank > principle.severity.rank:
            raise config_error(
                constitution,
                (*path, "severity"),
                f"`relax` cannot raise severity from {principle.severity.value} to "
                f"{new_severity.value}; use `action: tighten`",
            )
    applied = AppliedOverride(
        constitution=constitution.name,
        action=override.action,
        reason=override.reason,
        changes=dict(changes),
    )

    def change(p: Principle) -> Principle | None:
        if override.action == "disable":
            return None
        tags = [*p.tags, *(t for t in override.add_tags if t not in p.tags)]
        return p.model_copy(update={**changes, "tags": tags})

    new_layers = [
        MergedLayer(
            layer=m.layer.model_copy(
                update={"principles": _map_one(m.layer.principles, override.principle, change)}
            ),
            source=m.source,
        )
        for m in layers
    ]
    return new_layers, applied


def _find(layers: list[MergedLayer], principle_id: str) -> tuple[str, Principle] | None:
    for merged in layers:
        for principle, _, _ in iter_principles(merged.layer.principles, ()):
            if principle.id == principle_id:
                return merged.source, principle
    return None


def _map_one(
    principles: list[Principle],
    principle_id: str,
    change: Callable[[Principle], Principle | None],
) -> list[Principle]:
    """Copy of ``principles`` with the one whose id matches changed (or dropped if None)."""
    result: list[Principle] = []
    for principle in principles:
        if principle.id == principle_id:
            changed = change(principle)
            if changed is not None:
                result.append(changed)
            continue
        if principle.children:
            principle = principle.model_copy(
                update={"children": _map_one(principle.children, principle_id, change)}
            )
        result.append(principle)
    return result
