"""Resolution: which layers and principles of a constitution apply to one context, and why.

:func:`resolve` is pure and deterministic: the same constitution and context always give the same
ordered result. Conditions are thresholds, so raising the risk tier, adding a domain or raising the
complexity can only switch more layers and sub-principles on, never off.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from cai2.config import StrictModel
from cai2.constitution._merge import FlattenedConstitution
from cai2.constitution._schema import (
    Activation,
    Constitution,
    Example,
    Layer,
    Principle,
    PrincipleExamples,
    Severity,
)
from cai2.context._types import Context, RiskTier

LayerKind = Literal["base", "risk", "complexity", "domain"]
_KIND_ORDER: dict[str, int] = {"base": 0, "risk": 1, "complexity": 2, "domain": 3}


class _Frozen(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActiveLayer(_Frozen):
    """A layer that is on for the context."""

    id: str = Field(description="Layer id.")
    description: str = Field(description="What the layer is for.")
    kind: LayerKind = Field(description="`base` (always on), `risk`, `complexity` or `domain`.")
    priority: int = Field(description="Precedence of its principles in a conflict; higher wins.")
    depth: int = Field(description="0 for base layers, 1 for conditional layers.")
    source: str = Field(description="Constitution that defined (or last changed) the layer.")
    reason: str = Field(description="Why the layer is on.")


class ActivePrinciple(_Frozen):
    """A principle that applies to the context, with where it came from and why it is on."""

    principle: Principle = Field(description="The principle, overrides applied, children removed.")
    layer_id: str = Field(description="Layer it belongs to.")
    depth: int = Field(
        description=(
            "Critique round that first draws it: 0 base, 1 risk / domain layers and first-level "
            "sub-principles of base, then one more per sub-principle level."
        )
    )
    level: int = Field(
        description="0 for a layer's own principle, 1 for a child, 2 for a grandchild."
    )
    parent_id: str | None = Field(description="Id of the parent principle for a sub-principle.")
    priority: int = Field(description="Its layer's priority.")
    reason: str = Field(description="Why it is active.")
    overrides: tuple[str, ...] = Field(description="Overrides applied to it, one line each.")

    @property
    def id(self) -> str:
        """The principle id."""
        return self.principle.id

    @property
    def statement(self) -> str:
        """The rule."""
        return self.principle.statement

    @property
    def critique_request(self) -> str:
        """The critique request."""
        return self.principle.critique_request

    @property
    def revision_request(self) -> str:
        """The revision request."""
        return self.principle.revision_request

    @property
    def comparison_question(self) -> str:
        """The preference question."""
        return self.principle.comparison_question

    @property
    def severity(self) -> Severity:
        """Severity after overrides."""
        return self.principle.severity

    @property
    def examples(self) -> PrincipleExamples:
        """Few-shot examples."""
        return self.principle.examples


class InactiveItem(_Frozen):
    """A layer or principle that is off for the context, and why."""

    id: str = Field(description="Layer or principle id.")
    kind: Literal["layer", "principle"] = Field(description="What it is.")
    reason: str = Field(description="Why it is off.")


class ActiveConstitution(_Frozen):
    """The part of a constitution that applies to one context."""

    name: str = Field(description="Constitution name.")
    version: str = Field(description="Constitution version.")
    lineage: tuple[str, ...] = Field(description="Names from this constitution to its root.")
    context: Context = Field(description="The context it was resolved for.")
    layers: tuple[ActiveLayer, ...] = Field(description="Active layers, base → risk → domain.")
    principles: tuple[ActivePrinciple, ...] = Field(
        description="Active principles, ordered by depth, then layer order, then file order."
    )
    inactive: tuple[InactiveItem, ...] = Field(description="What is off, with the reason.")

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids of the active principles in order."""
        return tuple(p.id for p in self.principles)

    @property
    def max_depth(self) -> int:
        """Deepest depth among active principles (-1 when none is active)."""
        return max((p.depth for p in self.principles), default=-1)

    def by_depth(self) -> dict[int, tuple[ActivePrinciple, ...]]:
        """Active principles grouped by depth, in ascending depth order."""
        groups: dict[int, list[ActivePrinciple]] = {}
        for principle in self.principles:
            groups.setdefault(principle.depth, []).append(principle)
        return {depth: tuple(groups[depth]) for depth in sorted(groups)}

    def up_to_depth(self, depth: int) -> tuple[ActivePrinciple, ...]:
        """Active principles of depth at most ``depth`` (what critique round ``depth`` uses)."""
        return tuple(p for p in self.principles if p.depth <= depth)

    def principle(self, principle_id: str) -> ActivePrinciple:
        """The active principle with ``principle_id``.

        Raises:
            KeyError: if it is not active.
        """
        for principle in self.principles:
            if principle.id == principle_id:
                return principle
        raise KeyError(principle_id)

    def layer_tree(self, layer_id: str) -> list[ActivePrinciple]:
        """The active principles of one layer in file order, each followed by its children."""
        members = [p for p in self.principles if p.layer_id == layer_id]
        children: dict[str | None, list[ActivePrinciple]] = {}
        for principle in members:
            children.setdefault(principle.parent_id, []).append(principle)
        out: list[ActivePrinciple] = []

        def walk(parent_id: str | None) -> None:
            for principle in children.get(parent_id, []):
                out.append(principle)
                walk(principle.id)

        walk(None)
        return out

    def by_precedence(self) -> tuple[ActivePrinciple, ...]:
        """Principles in conflict-resolution order: layer priority, then severity, high first."""
        order = {p.id: i for i, p in enumerate(self.principles)}
        return tuple(
            sorted(self.principles, key=lambda p: (-p.priority, -p.severity.rank, order[p.id]))
        )

    def examples(self) -> list[tuple[str, Example, bool]]:
        """Every few-shot example of the active principles as ``(id, example, violates)``."""
        out: list[tuple[str, Example, bool]] = []
        for principle in self.principles:
            out += [(principle.id, e, False) for e in principle.examples.compliant]
            out += [(principle.id, e, True) for e in principle.examples.violating]
        return out

    def explain(self) -> str:
        """Plain-text account of what is active and why, for logs and the CLI."""
        ctx = self.context
        domains = ", ".join(ctx.domains) or "none"
        lines = [
            f"{self.name} v{self.version} (lineage: {' → '.join(self.lineage)})",
            f"context: risk={ctx.risk.value} domains={domains} complexity={ctx.complexity:.2f}",
            f"{len(self.layers)} active layers, {len(self.principles)} active principles",
        ]
        for layer in self.layers:
            lines.append(
                f"layer {layer.id} [{layer.kind}, priority {layer.priority}]: {layer.reason}"
            )
            for principle in self.layer_tree(layer.id):
                indent = "  " * (principle.level + 1)
                lines.append(
                    f"{indent}- {principle.id} (depth {principle.depth}, "
                    f"{principle.severity.value}): {principle.reason}"
                )
                lines += [f"{indent}    {line}" for line in principle.overrides]
        for item in self.inactive:
            lines.append(f"off: {item.kind} {item.id}: {item.reason}")
        return "\n".join(lines)


def layer_kind(activation: Activation) -> LayerKind:
    """``domain`` if it names domains, else ``risk``, ``complexity`` or ``base`` by thresholds."""
    if activation.domains:
        return "domain"
    if activation.min_risk is not RiskTier.low:
        return "risk"
    if activation.min_complexity > 0.0:
        return "complexity"
    return "base"


def resolve(
    constitution: Constitution | FlattenedConstitution, context: Context
) -> ActiveConstitution:
    """The layers and principles of ``constitution`` that apply to ``context``.

    Args:
        constitution: A loaded constitution, or one already flattened (faster when resolving
            many contexts: flattening is the costly part).
        context: The assessed risk, domains and complexity of the interaction.

    Returns:
        The active constitution: layers ordered base → risk → complexity → domain (lower
        thresholds, then higher priority, first within a kind), principles ordered by depth, then
        layer order, then file order.
    """
    flat = (
        constitution if isinstance(constitution, FlattenedConstitution) else constitution.flatten()
    )
    ordered = sorted(enumerate(flat.layers), key=lambda item: _layer_order(item[1].layer, item[0]))
    layers: list[ActiveLayer] = []
    principles: list[tuple[tuple[int, int, int], ActivePrinciple]] = []
    inactive: list[InactiveItem] = []
    for layer_rank, (_, merged) in enumerate(ordered):
        layer = merged.layer
        kind = layer_kind(layer.activation)
        met, why = _activation_met(layer.activation, context)
        if not met:
            inactive.append(InactiveItem(id=layer.id, kind="layer", reason=why))
            continue
        depth = 0 if kind == "base" else 1
        layers.append(
            ActiveLayer(
                id=layer.id,
                description=layer.description,
                kind=kind,
                priority=layer.priority,
                depth=depth,
                source=merged.source,
                reason=why,
            )
        )
        counter = [0]
        for principle in layer.principles:
            _collect(
                flat,
                principle,
                layer.id,
                layer.priority,
                depth,
                0,
                None,
                f"in layer {layer.id}",
                layer_rank,
                counter,
                context,
                principles,
                inactive,
            )
    for principle_id, applied in sorted(flat.disabled.items()):
        inactive.append(InactiveItem(id=principle_id, kind="principle", reason=applied.describe()))
    principles.sort(key=lambda item: item[0])
    return ActiveConstitution(
        name=flat.name,
        version=flat.version,
        lineage=flat.lineage,
        context=context,
        layers=tuple(layers),
        principles=tuple(p for _, p in principles),
        inactive=tuple(inactive),
    )


def _layer_order(layer: Layer, index: int) -> tuple[int, int, float, int, int]:
    """Base → risk → complexity → domain; lower thresholds first; then higher priority first."""
    activation = layer.activation
    return (
        _KIND_ORDER[layer_kind(activation)],
        activation.min_risk.rank,
        activation.min_complexity,
        -layer.priority,
        index,
    )


def _collect(
    flat: FlattenedConstitution,
    principle: Principle,
    layer_id: str,
    priority: int,
    depth: int,
    level: int,
    parent_id: str | None,
    reason: str,
    layer_rank: int,
    counter: list[int],
    context: Context,
    out: list[tuple[tuple[int, int, int], ActivePrinciple]],
    inactive: list[InactiveItem],
) -> None:
    """Add ``principle`` and every child whose unfold condition ``context`` meets."""
    active = ActivePrinciple(
        principle=principle.model_copy(update={"children": []}),
        layer_id=layer_id,
        depth=depth,
        level=level,
        parent_id=parent_id,
        priority=priority,
        reason=reason,
        overrides=tuple(o.describe() for o in flat.overrides.get(principle.id, ())),
    )
    out.append(((depth, layer_rank, counter[0]), active))
    counter[0] += 1
    for child in principle.children:
        unfold = child.unfold
        # The loader guarantees every child has an unfold condition; default to "always" if not.
        activation = Activation(
            min_risk=(unfold.min_risk if unfold and unfold.min_risk else RiskTier.low),
            min_complexity=(unfold.min_complexity if unfold and unfold.min_complexity else 0.0),
        )
        met, why = _activation_met(activation, context)
        if not met:
            inactive.append(InactiveItem(id=child.id, kind="principle", reason=why))
            continue
        _collect(
            flat,
            child,
            layer_id,
            priority,
            depth + 1,
            level + 1,
            principle.id,
            f"sub-principle of {principle.id}, unfolds because {why}",
            layer_rank,
            counter,
            context,
            out,
            inactive,
        )


def _activation_met(activation: Activation, context: Context) -> tuple[bool, str]:
    """Whether ``context`` meets ``activation``, with the reason either way."""
    if activation.is_unconditional:
        return True, "always on (no conditions)"
    met: list[str] = []
    unmet: list[str] = []
    if activation.min_risk is not RiskTier.low:
        if context.risk.rank >= activation.min_risk.rank:
            met.append(f"risk {context.risk.value} ≥ {activation.min_risk.value}")
        else:
            unmet.append(f"risk {context.risk.value} < {activation.min_risk.value}")
    if activation.domains:
        matched = [d for d in activation.domains if d in context.domains]
        if matched:
            met.append(f"domain {', '.join(matched)} present")
        else:
            unmet.append(f"none of domains {', '.join(activation.domains)} present")
    if activation.min_complexity > 0.0:
        if context.complexity >= activation.min_complexity:
            met.append(f"complexity {context.complexity:.2f} ≥ {activation.min_complexity:g}")
        else:
            unmet.append(f"complexity {context.complexity:.2f} < {activation.min_complexity:g}")
    if unmet:
        return False, "; ".join(unmet)
    return True, "; ".join(met)
