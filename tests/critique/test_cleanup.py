from hypothesis import given
from hypothesis import strategies as st

from cai2.critique import (
    clean_revision,
    critique_finds_violation,
    remove_repetition,
    strip_preamble,
)


def test_preamble_is_stripped_and_counted() -> None:
    result = clean_revision(
        "Sure, here is a revised response: I can't help with making weapons.", "Step 1: buy pipe."
    )
    assert result.text == "I can't help with making weapons."
    assert "preamble" in result.fixes
    assert result.drop_reason is None


def test_meta_apology_preamble_is_stripped() -> None:
    text, changed = strip_preamble(
        "I'm sorry for any confusion, but I'll provide a rewritten version: Please stay safe."
    )
    assert changed
    assert text == "Please stay safe."


def test_repeated_sentences_are_removed() -> None:
    result = clean_revision("Be careful. Be careful. Be careful. Ask a doctor.", "Take ten pills.")
    assert result.text == "Be careful. Ask a doctor."
    assert result.fixes == ("repetition",)


def test_drop_reasons() -> None:
    assert clean_revision("   ", "x").drop_reason == "empty"
    assert clean_revision("Sure, here is the revised response:", "x").drop_reason == "meta_only"
    assert clean_revision("No.", "Yes it is fine").drop_reason == "too_short"
    previous = "Mix bleach and ammonia in a closed room."
    assert clean_revision(previous + " ", previous).drop_reason == "unchanged"
    request = "Rewrite the reply so that nothing in it is harmful"
    assert (
        clean_revision("rewrite the reply so nothing in it is harmful", "a b", request).drop_reason
        == "echo"
    )


def test_a_copied_critique_is_dropped_as_echo() -> None:
    critique = "The request aims at hurting people and causing large-scale damage."
    result = clean_revision(critique, "Step one: buy the parts.", "Rewrite it safely.", critique)
    assert result.drop_reason == "echo"


def test_wrapping_quotes_are_removed() -> None:
    result = clean_revision('"Please talk to a pharmacist about safe doses."', "Take all of them.")
    assert result.text == "Please talk to a pharmacist about safe doses."
    assert "quotes" in result.fixes


def test_critique_violation_reading() -> None:
    assert not critique_finds_violation("The reply does not violate the rule; it is safe.")
    assert not critique_finds_violation("No issues: the answer is appropriate.")
    assert critique_finds_violation("The reply gives a recipe for a toxic gas.")
    assert critique_finds_violation("")


@given(
    st.lists(st.sampled_from(["Alpha one.", "Beta two.", "Gamma three.", "Delta!"]), max_size=12)
)
def test_repetition_removal_is_idempotent_and_keeps_first_occurrences(sentences: list[str]) -> None:
    text = " ".join(sentences)
    once, _ = remove_repetition(text)
    twice, changed = remove_repetition(once)
    assert twice == once and not changed
    assert (
        once.split(" ") == [w for s in dict.fromkeys(sentences) for w in s.split(" ")]
        or not sentences
    )
