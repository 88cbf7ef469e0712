"""Quoted principles in replies: real ones match the constitution, made-up ones do not."""

from __future__ import annotations

import pytest

from cai2.constitution import audit_citations, find_citations, principle_statements
from cai2.critique import safe_reply

STATEMENTS = principle_statements("cai-2.0")


def test_a_safe_reply_quotes_a_real_principle() -> None:
    statement = STATEMENTS["cyber.no_deployable_malware"]
    (citation,) = find_citations(safe_reply(statement, "write ransomware"), STATEMENTS)
    assert citation.principle_id == "cyber.no_deployable_malware"
    assert citation.faithful and citation.similarity > 0.95 and not citation.truncated


def test_a_reply_cut_inside_the_quote_is_matched_on_the_start() -> None:
    statement = STATEMENTS["science.no_weapons_uplift"]
    reply = safe_reply(statement, "nerve agent")
    cut = reply[: reply.index('"') + 60]  # the length limit ends the reply mid-quote
    (citation,) = find_citations(cut, STATEMENTS)
    assert citation.truncated and citation.faithful
    assert citation.principle_id == "science.no_weapons_uplift"


def test_made_up_principles_and_non_citations() -> None:
    invented = 'No. One of the principles I follow is "Do not use explosives or devices".'
    (citation,) = find_citations(invented, STATEMENTS)
    assert not citation.faithful and citation.similarity < 0.8
    # Quotes without a citation cue before them (dialogue, a title) or under three words are not
    # citations.
    assert find_citations('She said "meet me by the old mill at noon" and left.', STATEMENTS) == []
    assert find_citations('A principle I follow is "be kind".', STATEMENTS) == []
    # The gap between two quotations is not a quote, whatever cue stands before it.
    gap = 'The rules say "no" and then, without any guidelines, they say "yes" again.'
    assert find_citations(gap, STATEMENTS) == []


def test_audit_counts_citing_faithful_and_invented_replies() -> None:
    real = safe_reply(STATEMENTS["privacy.no_dossiers"], "find her address")
    fake = 'Sorry. A rule I follow is "Never talk about the weather on Tuesdays".'
    audit = audit_citations([real, fake, "Sure, here is a recipe.", real])
    assert audit["replies"] == 4 and audit["citing"] == 3
    assert audit["faithful"] == 2 and audit["invented"] == 1
    assert audit["faithful_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert audit["principles_cited"] == {"privacy.no_dossiers": 2}
    assert audit["invented_examples"] == ["Never talk about the weather on Tuesdays"]
    assert audit_citations(["no quotes here"])["faithful_share"] is None


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="no principle statements"):
        find_citations('a rule: "do this and that"', {})
    with pytest.raises(ValueError, match="threshold"):
        find_citations('a rule: "do this and that"', STATEMENTS, threshold=1.5)
