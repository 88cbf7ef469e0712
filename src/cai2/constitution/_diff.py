"""What changed between two constitutions, compared after inheritance and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cai2.constitution._merge import FlattenedConstitution
from cai2.constitution._schema import Constitution, Layer, Principle

_LAYER_FIELDS = ("description", "activation", "priority")
_PRINCIPLE_FIELDS = (
    "statement",
    "critique_request",
    "revision_request",
    "comparison_question",
    "severity",
    "locked",
    "tags",
    "examples",
    "unfold",
)


@dataclass(frozen=True)
class Change:
    """One field of a layer or principle that differs, with both values as plain data."""

    item: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ConstitutionDiff:
    """Layers and principles added, removed and changed from ``before`` to ``after``."""

    before: str
    after: str
    layers_added: tuple[str, ...] = ()
    layers_removed: tuple[str, ...] = ()
    layers_changed: tuple[Change, ...] = ()
    principles_added: tuple[str, ...] = ()
    principles_removed: tuple[str, ...] = ()
    principles_changed: tuple[Change, ...] = ()
    principles_moved: tuple[Change, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        """True when the two constitutions have the same layers and principles."""
        return not (
            self.layers_added
            or self.layers_removed
            or self.layers_changed
            or self.principles_added
            or self.principles_removed
            or self.principles_changed
            or self.principles_moved
        )

    def lines(self) -> list[str]:
        """A readable, line-per-change summary (``+`` added, ``-`` removed, ``~`` changed)."""
        out = [f"diff {self.before} → {self.after}"]
        out += [f"+ layer {i}" for i in self.layers_added]
        out += [f"- layer {i}" for i in self.layers_removed]
        out += [
            f"~ layer {c.item}.{c.field}: {_short(c.before)} → {_short(c.after)}"
            for c in self.layers_changed
        ]
        out += [f"+ principle {i}" for i in self.principles_added]
        out += [f"- principle {i}" for i in self.principles_removed]
        out += [
            f"~ principle {c.item}.{c.field}: {_short(c.before)} → {_short(c.after)}"
            for c in (*self.principles_changed, *self.principles_moved)
        ]
        if self.is_empty:
            out.append("(no differences)")
        return out


def diff_constitutions(
    before: Constitution | FlattenedConstitution, after: Constitution | FlattenedConstitution
) -> ConstitutionDiff:
    """Compare two constitutions after flattening (inheritance and overrides applied).

    Args:
        before: The reference, e.g. the parent.
        after: The constitution to compare with it.
    """
    flat_before = before if isinstance(before, FlattenedConstitution) else before.flatten()
    flat_after = after if isinstance(after, FlattenedConstitution) else after.flatten()
    layers_before = {m.layer.id: m.layer for m in flat_before.layers}
    layers_after = {m.layer.id: m.layer for m in flat_after.layers}
    principles_before = _principles(flat_before)
    principles_after = _principles(flat_after)
    return ConstitutionDiff(
        before=flat_before.name,
        after=flat_after.name,
        layers_added=tuple(i for i in layers_after if i not in layers_before),
        layers_removed=tuple(i for i in layers_before if i not in layers_after),
        layers_changed=tuple(
            change
            for layer_id, layer in layers_after.items()
            if layer_id in layers_before
            for change in _changes(layer_id, layers_before[layer_id], layer, _LAYER_FIELDS)
        ),
        principles_added=tuple(i for i in principles_after if i not in principles_before),
        principles_removed=tuple(i for i in principles_before if i not in principles_after),
        principles_changed=tuple(
            change
            for principle_id, (_, principle) in principles_after.items()
            if principle_id in principles_before
            for change in _changes(
                principle_id, principles_before[principle_id][1], principle, _PRINCIPLE_FIELDS
            )
        ),
        principles_moved=tuple(
            Change(principle_id, "layer", principles_before[principle_id][0], layer_id)
            for principle_id, (layer_id, _) in principles_after.items()
            if principle_id in principles_before and principles_before[principle_id][0] != layer_id
        ),
    )


def _principles(flat: FlattenedConstitution) -> dict[str, tuple[str, Principle]]:
    return {principle.id: (layer_id, principle) for layer_id, principle, _ in flat.principles()}


def _changes(
    item: str, before: Layer | Principle, after: Layer | Principle, names: tuple[str, ...]
) -> list[Change]:
    out = []
    for name in names:
        old = _plain(getattr(before, name))
        new = _plain(getattr(after, name))
        if old != new:
            out.append(Change(item, name, old, new))
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_defaults=True)
    if hasattr(value, "value"):
        return value.value
    return value


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
