"""Layered constitutions: the file format, loading with inheritance, and resolution by context.

A constitution is a set of layers of principles. Each layer switches on by risk tier, domain and
complexity; principles may have sub-principles that unfold only at higher risk or complexity. An
organisation's constitution ``extends`` a built-in one and tightens, relaxes or disables inherited
principles with a stated reason. :func:`resolve` picks what applies to one context and says why.
"""

from cai2.constitution._citations import (
    Citation,
    audit_citations,
    find_citations,
    principle_statements,
)
from cai2.constitution._diff import Change, ConstitutionDiff, diff_constitutions
from cai2.constitution._domains import DOMAIN_DESCRIPTIONS, KNOWN_DOMAINS
from cai2.constitution._loader import (
    BUILTIN_CONSTITUTIONS,
    builtin_constitution_path,
    load_constitution,
)
from cai2.constitution._merge import (
    AppliedOverride,
    FlattenedConstitution,
    MergedLayer,
    flatten_constitution,
)
from cai2.constitution._resolve import (
    ActiveConstitution,
    ActiveLayer,
    ActivePrinciple,
    InactiveItem,
    layer_kind,
    resolve,
)
from cai2.constitution._schema import (
    Activation,
    Constitution,
    Example,
    Layer,
    Override,
    Principle,
    PrincipleExamples,
    Severity,
    Unfold,
    constitution_json_schema,
)

__all__ = [
    "BUILTIN_CONSTITUTIONS",
    "DOMAIN_DESCRIPTIONS",
    "KNOWN_DOMAINS",
    "Activation",
    "ActiveConstitution",
    "ActiveLayer",
    "ActivePrinciple",
    "AppliedOverride",
    "Change",
    "Citation",
    "Constitution",
    "ConstitutionDiff",
    "Example",
    "FlattenedConstitution",
    "InactiveItem",
    "Layer",
    "MergedLayer",
    "Override",
    "Principle",
    "PrincipleExamples",
    "Severity",
    "Unfold",
    "audit_citations",
    "builtin_constitution_path",
    "constitution_json_schema",
    "diff_constitutions",
    "find_citations",
    "flatten_constitution",
    "layer_kind",
    "load_constitution",
    "principle_statements",
    "resolve",
]
