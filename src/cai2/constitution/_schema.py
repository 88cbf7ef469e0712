"""The constitution file format: principles, layers, overrides, as pydantic models.

A constitution is a YAML file validated against :class:`Constitution`. ``cai2 constitution
schema`` exports the same model as JSON Schema, so editors can complete and check the file.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr

from cai2.config import StrictModel, YamlDocument
from cai2.context._types import Context, RiskTier

if TYPE_CHECKING:
    from cai2.constitution._merge import FlattenedConstitution
    from cai2.constitution._resolve import ActiveConstitution

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class Severity(StrEnum):
    """How bad a violation of a principle is; ordered, compare with :meth:`rank`."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        """0 for low … 3 for critical."""
        return list(Severity).index(self)


class Example(StrictModel):
    """One worked example of a principle, used as a few-shot critique / revision demonstration."""

    prompt: str = Field(min_length=1, description="The user's request.")
    response: str = Field(min_length=1, description="The assistant's reply being judged.")
    critique: str | None = Field(
        None, description="Why the reply complies with or violates the principle."
    )
    revision: str | None = Field(
        None, description="For a violating example: a reply that fixes the violation."
    )


class PrincipleExamples(StrictModel):
    """Compliant and violating examples of one principle."""

    compliant: list[Example] = Field(
        default_factory=list, description="Replies that follow the principle."
    )
    violating: list[Example] = Field(
        default_factory=list, description="Replies that break it, ideally with a revision."
    )


class Unfold(StrictModel):
    """When a sub-principle unfolds: every condition that is set must hold."""

    min_risk: RiskTier | None = Field(
        None, description="Lowest risk tier at which the sub-principle applies."
    )
    min_complexity: float | None = Field(
        None, ge=0.0, description="Lowest task complexity (0–1) at which it applies."
    )


class Principle(StrictModel):
    """One rule of the constitution, with the texts a critic, reviser and judge need."""

    id: str = Field(
        pattern=ID_PATTERN,
        description=(
            "Unique id across the constitution and everything it extends, e.g. `honest.accuracy`."
        ),
    )
    statement: str = Field(min_length=1, description="The rule in one or two sentences.")
    critique_request: str = Field(
        min_length=1, description="Asks a critic to find where a reply breaks the rule."
    )
    revision_request: str = Field(
        min_length=1, description="Asks a reviser to rewrite the reply so it follows the rule."
    )
    comparison_question: str = Field(
        min_length=1, description="Asks a judge which of two replies better follows the rule."
    )
    severity: Severity = Field(Severity.medium, description="How bad a violation is.")
    locked: bool = Field(
        False,
        description=(
            "Hard limit: extending constitutions may tighten it but never relax or disable it."
        ),
    )
    tags: list[str] = Field(default_factory=list, description="Free-form labels for filtering.")
    examples: PrincipleExamples = Field(
        default_factory=PrincipleExamples, description="Few-shot examples."
    )
    unfold: Unfold | None = Field(
        None,
        description=(
            "Required on sub-principles (children): the risk / complexity at which they apply."
        ),
    )
    children: list[Principle] = Field(
        default_factory=list,
        description="Sub-principles that unfold only at higher risk or complexity.",
    )


class Activation(StrictModel):
    """When a layer switches on: every condition must hold (domains match if any one is present)."""

    min_risk: RiskTier = Field(
        RiskTier.low, description="Lowest risk tier at which the layer is on."
    )
    domains: list[str] = Field(
        default_factory=list,
        description="The layer is on if the context touches any of these; empty means any domain.",
    )
    min_complexity: float = Field(
        0.0, ge=0.0, description="Lowest task complexity (0–1) at which the layer is on."
    )

    @property
    def is_unconditional(self) -> bool:
        """True when the layer is on for every context."""
        return self.min_risk is RiskTier.low and not self.domains and self.min_complexity == 0.0


class Layer(StrictModel):
    """A group of principles that switch on together."""

    id: str = Field(pattern=ID_PATTERN, description="Unique layer id, e.g. `domain.healthcare`.")
    description: str = Field("", description="What the layer is for.")
    activation: Activation = Field(
        default_factory=Activation, description="When the layer switches on; default: always."
    )
    priority: int = Field(
        0,
        description=(
            "Precedence when active principles pull in different directions: the higher wins. "
            "Also orders layers of the same kind."
        ),
    )
    inherit: Literal["replace", "extend"] | None = Field(
        None,
        description=(
            "Only when a parent constitution has a layer with this id: `replace` swaps it for "
            "this one; `extend` keeps its principles, appends these, and takes any of "
            "`description`, `activation`, `priority` set here."
        ),
    )
    principles: list[Principle] = Field(
        default_factory=list, description="The layer's principles, in order."
    )


class Override(StrictModel):
    """A change an extending constitution makes to an inherited principle."""

    principle: str = Field(description="Id of the principle (or sub-principle) to change.")
    action: Literal["tighten", "relax", "disable"] = Field(
        description=(
            "`tighten` may only raise severity, `relax` may only lower it, `disable` removes it."
        )
    )
    reason: str = Field(min_length=1, description="Why the organisation makes this change.")
    severity: Severity | None = Field(None, description="The new severity (tighten / relax).")
    statement: str | None = Field(None, description="Replacement statement (tighten / relax).")
    critique_request: str | None = Field(None, description="Replacement critique request.")
    revision_request: str | None = Field(None, description="Replacement revision request.")
    comparison_question: str | None = Field(None, description="Replacement comparison question.")
    add_tags: list[str] = Field(default_factory=list, description="Tags to add to the principle.")

    @property
    def changed_fields(self) -> dict[str, Any]:
        """The principle fields this override replaces (not counting tags)."""
        names = ("severity", "statement", "critique_request", "revision_request")
        values = {name: getattr(self, name) for name in (*names, "comparison_question")}
        return {name: value for name, value in values.items() if value is not None}


class Constitution(StrictModel):
    """A constitution as written: its own layers, what it extends, and its overrides.

    Use :func:`cai2.constitution.load_constitution` to read one from YAML (with validation and
    inheritance), then :meth:`resolve` to get the principles active for a context.
    """

    name: str = Field(min_length=1, description="Name shown in reports, e.g. `acme-health`.")
    version: str = Field("1", description="Version of this constitution text.")
    description: str = Field("", description="What the constitution is for.")
    extends: str | None = Field(
        None,
        description="Built-in name (e.g. `cai-2.0`) or path (relative to this file) of the parent.",
    )
    layers: list[Layer] = Field(default_factory=list, description="This constitution's layers.")
    overrides: list[Override] = Field(
        default_factory=list,
        description="Changes to inherited principles, applied after all layers are merged.",
    )

    _document: YamlDocument | None = PrivateAttr(None)
    _source: Path | None = PrivateAttr(None)
    _parent: Constitution | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file it was loaded from, if any."""
        return self._source

    @property
    def parent(self) -> Constitution | None:
        """The loaded constitution named by ``extends``, once the loader has attached it."""
        return self._parent

    def flatten(self) -> FlattenedConstitution:
        """Merge the ``extends`` chain and apply overrides (see :func:`flatten_constitution`)."""
        from cai2.constitution._merge import flatten_constitution

        return flatten_constitution(self)

    def resolve(self, context: Context) -> ActiveConstitution:
        """The layers and principles active for ``context``, each with the reason it is on."""
        from cai2.constitution._resolve import resolve

        return resolve(self, context)


def constitution_json_schema() -> dict[str, Any]:
    """JSON Schema of the constitution file format, for editors (draft 2020-12)."""
    schema = Constitution.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def constitution_json_schema_text() -> str:
    """:func:`constitution_json_schema` as indented JSON text."""
    return json.dumps(constitution_json_schema(), indent=2, sort_keys=False) + "\n"
