"""Checks pydantic cannot express: duplicate ids, unknown domains, conditions that can never fire.

Every failure is a :class:`~cai2.errors.ConfigError` naming the file, line and key path of the bad
value, so ``cai2 constitution validate`` points the author at the exact spot to fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from cai2.config import KeyPath, format_key
from cai2.constitution._domains import KNOWN_DOMAINS
from cai2.constitution._schema import Constitution, Principle, Unfold
from cai2.context._types import RiskTier
from cai2.errors import ConfigError


def config_error(constitution: Constitution, path: KeyPath, message: str) -> ConfigError:
    """A ConfigError located at ``path`` inside the file ``constitution`` was read from."""
    document = constitution._document
    line = document.line_of(path) if document is not None else None
    source = constitution.source
    file = source if source is not None else f"<constitution {constitution.name}>"
    return ConfigError(message, file=file, line=line, key=format_key(path) or None)


def iter_principles(
    principles: list[Principle], path: KeyPath
) -> Iterator[tuple[Principle, KeyPath, int]]:
    """Every principle and sub-principle, pre-order, with its key path and nesting level."""
    for index, principle in enumerate(principles):
        here = (*path, index)
        yield principle, here, len([p for p in path if p == "children"])
        yield from iter_principles(principle.children, (*here, "children"))


def check_constitution(constitution: Constitution) -> None:
    """Check one constitution file on its own (inheritance is checked when it is flattened).

    Raises:
        ConfigError: at the first problem found, with file, line and key path.
    """
    _check_layers(constitution)
    _check_overrides(constitution)


def _check_layers(constitution: Constitution) -> None:
    layer_ids: dict[str, int] = {}
    principle_paths: dict[str, KeyPath] = {}
    for index, layer in enumerate(constitution.layers):
        path: KeyPath = ("layers", index)
        if layer.id in layer_ids:
            raise config_error(
                constitution,
                (*path, "id"),
                f"duplicate layer id `{layer.id}` (first used by layers.{layer_ids[layer.id]}); "
                "give each layer its own id",
            )
        layer_ids[layer.id] = index
        if layer.inherit is not None and constitution.extends is None:
            raise config_error(
                constitution,
                (*path, "inherit"),
                f"`inherit: {layer.inherit}` needs a parent; add `extends:` or remove `inherit`",
            )
        if not layer.principles and layer.inherit != "extend":
            raise config_error(
                constitution, (*path, "principles"), f"layer `{layer.id}` has no principles"
            )
        activation = layer.activation
        for d_index, domain in enumerate(activation.domains):
            if domain not in KNOWN_DOMAINS:
                raise config_error(
                    constitution,
                    (*path, "activation", "domains", d_index),
                    f"unknown domain `{domain}`: the layer could never fire; "
                    f"use one of {', '.join(KNOWN_DOMAINS)}",
                )
        if activation.min_complexity > 1.0:
            raise config_error(
                constitution,
                (*path, "activation", "min_complexity"),
                f"min_complexity {activation.min_complexity} can never be reached "
                "(complexity runs from 0 to 1); use a value in [0, 1]",
            )
        for principle, p_path, level in iter_principles(layer.principles, (*path, "principles")):
            if principle.id in principle_paths:
                raise config_error(
                    constitution,
                    (*p_path, "id"),
                    f"duplicate principle id `{principle.id}` "
                    f"(first used at {format_key(principle_paths[principle.id])}); "
                    "ids must be unique",
                )
            principle_paths[principle.id] = p_path
            if level == 0 and principle.unfold is not None:
                raise config_error(
                    constitution,
                    (*p_path, "unfold"),
                    "`unfold` only applies to sub-principles (children); use the layer's "
                    "`activation` for a top-level principle",
                )
        for principle, p_path, _ in iter_principles(layer.principles, (*path, "principles")):
            _check_children(
                constitution,
                principle,
                p_path,
                activation.min_risk,
                activation.min_complexity,
            )


def _check_children(
    constitution: Constitution,
    principle: Principle,
    path: KeyPath,
    parent_risk: RiskTier,
    parent_complexity: float,
) -> None:
    """A child must unfold strictly later than its parent, or it would always be on with it."""
    for index, child in enumerate(principle.children):
        c_path: KeyPath = (*path, "children", index)
        unfold = child.unfold
        if unfold is None or (unfold.min_risk is None and unfold.min_complexity is None):
            raise config_error(
                constitution,
                (*c_path, "unfold") if unfold is not None else c_path,
                f"sub-principle `{child.id}` needs `unfold` with `min_risk` and/or "
                "`min_complexity` (when it applies beyond its parent)",
            )
        if unfold.min_complexity is not None and unfold.min_complexity > 1.0:
            raise config_error(
                constitution,
                (*c_path, "unfold", "min_complexity"),
                f"min_complexity {unfold.min_complexity} can never be reached "
                "(complexity runs from 0 to 1); use a value in [0, 1]",
            )
        if not _stricter(unfold, parent_risk, parent_complexity):
            raise config_error(
                constitution,
                (*c_path, "unfold"),
                f"sub-principle `{child.id}` unfolds whenever its parent is active "
                f"(parent needs risk ≥ {parent_risk.value}, complexity ≥ {parent_complexity:g}); "
                "raise `min_risk` or `min_complexity`, or make it a normal principle",
            )
        child_risk = max(parent_risk, unfold.min_risk or parent_risk, key=lambda r: r.rank)
        child_complexity = max(parent_complexity, unfold.min_complexity or 0.0)
        _check_children(constitution, child, c_path, child_risk, child_complexity)


def _stricter(unfold: Unfold, parent_risk: RiskTier, parent_complexity: float) -> bool:
    risk_stricter = unfold.min_risk is not None and unfold.min_risk.rank > parent_risk.rank
    complexity_stricter = (
        unfold.min_complexity is not None and unfold.min_complexity > parent_complexity
    )
    return risk_stricter or complexity_stricter


def _check_overrides(constitution: Constitution) -> None:
    seen: dict[str, int] = {}
    for index, override in enumerate(constitution.overrides):
        path: KeyPath = ("overrides", index)
        if override.principle in seen:
            raise config_error(
                constitution,
                (*path, "principle"),
                f"principle `{override.principle}` is already overridden at overrides."
                f"{seen[override.principle]}; merge the two into one override",
            )
        seen[override.principle] = index
        changes = override.changed_fields
        if override.action == "disable":
            extra = [*changes, *(["add_tags"] if override.add_tags else [])]
            if extra:
                raise config_error(
                    constitution,
                    (*path, extra[0]),
                    f"`disable` removes the principle, so `{extra[0]}` has no effect; remove it",
                )
        elif not changes and not override.add_tags:
            raise config_error(
                constitution,
                (*path, "action"),
                f"`{override.action}` changes nothing; set `severity`, a replacement text "
                "or `add_tags`",
            )
