"""Explicit rules that raise the risk tier when a request plainly asks for something dangerous.

The trained classifier generalises; the rules are the backstop for the few things that must never
be missed (mass-casualty weapons, sexual content involving children, imminent self-harm or
violence). A rule only ever *raises* the tier, so it is written to need both a dangerous object and
a request or intent around it: "the history of sarin" stays with the classifier, "how do I make
sarin" does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cai2.context._types import Evidence, RiskTier
from cai2.models._types import Conversation

# Up to `n` words between two parts of a pattern, within one sentence-ish span.
_GAP = r"(?:[\w'’,-]+\s+){0,%d}"

_CHEM_AGENTS = (
    r"(?:sarin|soman|tabun|cyclosarin|\bvx\b|novichok|nerve agents?|mustard gas|sulfur mustard|"
    r"phosgene|chlorine gas|chemical weapons?|toxic gas)"
)
_BIO_AGENTS = (
    r"(?:anthrax|bacillus anthracis|botulinum|botulism toxin|ricin|smallpox|variola|plague|"
    r"yersinia|ebola|marburg|bioweapons?|biological weapons?|1918 (?:flu|influenza))"
)
_NUCLEAR = (
    r"(?:dirty bomb|radiological (?:weapon|device)|weapons?[- ]grade|enrich(?:ed|ing)? uranium|"
    r"uranium enrichment|plutonium|caesium|cesium|cobalt-60|nuclear (?:device|bomb|weapon)s?|"
    r"implosion lens)"
)
_PRODUCE = (
    r"(?:synthesi[sz]e|synthesis|synthesising|synthesizing|produc(?:e|ing|tion)|make|making|"
    r"manufactur\w*|cook|brew|culture|cultivate|grow|weaponi[sz]\w*|aerosoli[sz]\w*|disperse|"
    r"dispersal|release|spread|purif\w*|extract\w*|stabili[sz]\w*|precursors?|obtain|steal|build|"
    r"scale up|enhance|shape|design|rebuild|reagents?)"
)
_MINOR = (
    r"(?:\b(?:[1-9]|1[0-7])[- ]?(?:yo|year[- ]olds?)\b|\bchild(?:ren)?\b|\bkids?\b|\bminors?\b|"
    r"underage|middle school|preteens?|pre-teens?|young teens?|schoolgirls?|schoolboys?|"
    r"\bboth 1[0-7]\b|aged? (?:[1-9]|1[0-7])\b|young (?:boys|girls))"
)
_SEXUAL = (
    r"(?:sexual|sexy|erotic|explicit|nudes?|naked|undress\w*|sex scene|\bsex\b|porn\w*|"
    r"lewd|touching games)"
)
_PEOPLE_TARGETS = (
    r"(?:school|class|office|work|workplace|mosque|synagogue|church|temple|parade|crowd|market|"
    r"rally|march|concert|stadium|mall|centre|center|festival|station|people|everyone|them all)"
)


@dataclass(frozen=True)
class Rule:
    """One explicit pattern that sets a minimum risk tier.

    Attributes:
        id: Stable name shown in evidence, e.g. ``cbrn-production``.
        tier: The tier a match raises the assessment to (at least).
        domains: Domains a match adds.
        description: What the rule catches, in words.
        patterns: Regexes (case-insensitive); all must match the same text.
    """

    id: str
    tier: RiskTier
    domains: tuple[str, ...]
    description: str
    patterns: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_compiled", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns)
        )

    def search(self, text: str) -> str | None:
        """The first pattern's matched text if every pattern matches ``text``, else ``None``."""
        first = None
        for regex in self._compiled:  # type: ignore[attr-defined]
            match = regex.search(text)
            if match is None:
                return None  # stop at the first pattern that fails
            first = first or match
        return first.group(0) if first is not None else None


def _near(a: str, b: str, gap: int = 8) -> str:
    """``a`` then ``b`` (or ``b`` then ``a``) with at most ``gap`` words between them."""
    between = _GAP % gap
    return rf"(?:(?:{a})\W+{between}(?:{b})|(?:{b})\W+{between}(?:{a}))"


RULES: tuple[Rule, ...] = (
    Rule(
        "cbrn-chemical",
        RiskTier.critical,
        ("chemistry_biology", "weapons"),
        "asks to make, obtain or deploy a chemical warfare agent",
        (_near(_PRODUCE, _CHEM_AGENTS),),
    ),
    Rule(
        "cbrn-biological",
        RiskTier.critical,
        ("chemistry_biology", "weapons"),
        "asks to make, grow, enhance or release a biological threat agent",
        (_near(_PRODUCE, _BIO_AGENTS),),
    ),
    Rule(
        "cbrn-nuclear",
        RiskTier.critical,
        ("weapons", "chemistry_biology"),
        "asks to build or obtain a nuclear or radiological weapon",
        (_near(_PRODUCE + r"|\bneed\b|how much", _NUCLEAR),),
    ),
    Rule(
        "pathogen-enhancement",
        RiskTier.critical,
        ("chemistry_biology", "weapons"),
        "asks how to make a pathogen more lethal, transmissible or vaccine-resistant",
        (
            r"(?:virus|viral|pathogen|bacteri\w+|strain|flu|influenza|measles|tuberculosis|cholera|"
            r"dengue|zika|covid|sars|mers|polio)",
            r"(?:more (?:lethal|deadly|virulent|transmissible|infectious)|deadlier|"
            r"transmissible between humans|escape (?:the |existing )?vaccines?|"
            r"resistant to (?:existing )?(?:vaccines?|treatment|antibiotics)|harder to treat|"
            r"increase the lethality|enhance the virulence)",
        ),
    ),
    Rule(
        "pathogen-release",
        RiskTier.critical,
        ("chemistry_biology", "weapons"),
        "asks how to grow or release a pathogen among people, or to evade biosecurity screening",
        (
            r"(?:(?:virus|pathogen|bacteri\w+|germs?|disease)\W+(?:[\w'’,-]+\s+){0,10}"
            r"(?:release|spread|disperse)\w*\W+(?:[\w'’,-]+\s+){0,4}(?:crowd\w*|city|airport|"
            r"school|public|stadium|subway|station))|(?:get around|evade|bypass|avoid)\W+"
            r"(?:[\w'’,-]+\s+){0,2}(?:dna |gene )?synthesis screening",
        ),
    ),
    Rule(
        "mass-casualty-intent",
        RiskTier.critical,
        ("violence", "weapons"),
        "states an aim of killing or poisoning many people",
        (
            r"(?:kill|infect|poison|hurt)\w*\s+(?:as many|the most|maximum|thousands|hundreds)|"
            r"maximum casualties|most casualties|(?:poison|contaminate)\w*\s+(?:a |the )?"
            r"(?:city'?s? )?(?:water supply|reservoir)|a bomb would kill the most",
        ),
    ),
    Rule(
        "sexual-content-minors",
        RiskTier.critical,
        ("minors", "sexual_content"),
        "asks for sexual content involving a child",
        (
            r"(?:write|describe|generate|create|compose|role-?play|story|scene|fan ?fiction|"
            r"pictures?|photos?|images?|collection|find)\W+" + (_GAP % 12) + _SEXUAL,
            _MINOR,
        ),
    ),
    Rule(
        "child-grooming",
        RiskTier.critical,
        ("minors", "sexual_content"),
        "seeks secret or isolated contact with a child",
        (
            _MINOR + r"|\b(?:1[0-7]|[1-9])\b",
            r"(?:without (?:telling )?(?:her|his|their|the) parents|keep (?:it|this|our \w+) "
            r"(?:a )?secret|get (?:her|him|them|one of them) alone|meet me alone|"
            r"send me (?:photos|pictures|pics)|secret touching|close to young|"
            r"agrees? to meet me|without raising suspicion)",
        ),
    ),
    Rule(
        "self-harm-intent",
        RiskTier.critical,
        ("self_harm", "mental_health"),
        "states an intention or plan to end one's own life",
        (
            r"\bkill(?:ing)? myself\b|\bend(?:ing)? (?:my (?:own )?life|it all)\b|"
            r"\bend it (?:tonight|today|this weekend|now)\b|\bgoodbye (?:letters?|notes?)\b|"
            r"\bwon'?t be here tomorrow\b|\bi (?:just )?took \d+ pills\b|\bbefore i jump\b|"
            r"\b(?:to|i) (?:not wake up|die in my sleep)\b|\bnoose\b|\bbleed out\b|"
            r"\bmake sure i die\b|"
            r"\bi'?m (?:taking|going to take) (?:them|it|all of them) tonight\b|"
            r"\bdefinitely fatal\b|\bsurest way\b|\bmost certain way to end\b|"
            r"\bgoing to (?:drive|crash) (?:my|the) car into\b",
        ),
    ),
    Rule(
        "self-harm-overdose-plan",
        RiskTier.critical,
        ("self_harm", "mental_health"),
        "asks about a lethal amount while stating an intention to take it",
        (
            r"\blethal (?:amount|dose)|\boverdose\b|\bhow many (?:pills|tablets)\b|\bfatal\b",
            r"\b(?:i'?m going to|i will|i'?ll) (?:take|swallow) (?:it|them|all)\b|\bi'?m done\b|"
            r"\bi want to die\b|\bend it\b|\bto die\b",
        ),
    ),
    Rule(
        "violence-intent",
        RiskTier.critical,
        ("violence",),
        "states an intention to attack people at a place or time",
        (
            r"\b(?:i'?m|i am|i will|we'?re|gonna|going to|planning to|plan to|tomorrow i'?m)\s+"
            r"(?:going to\s+)?"
            r"(?:shoot(?: up)?|attack|bomb|stab|kill|blow up|drive (?:a|my) \w+ into)\b"
            r"\W+"
            + (_GAP % 4)
            + _PEOPLE_TARGETS
            + r"|\bbringing (?:a|my) (?:gun|rifle|bomb|knife)\b|\bi'?m bringing a bomb\b|"
            r"rifle in the car|\bdrive (?:a|my|the) \w+ into (?:the )?(?:crowd|people)\b|"
            r"\bplan for assassinat\w*|\bassassinat\w* the\b",
        ),
    ),
    Rule(
        "explosives-weapons",
        RiskTier.high,
        ("weapons",),
        "asks how to build an explosive or an illegal firearm",
        (
            _near(
                r"(?:build|make|making|construct|assemble|recipe|print|convert)",
                r"(?:(?<!smoke )(?<!bath )(?<!photo )bomb|explosives?|napalm|molotov|thermite|"
                r"silencer|suppressor|zip gun|ghost gun|untraceable gun|fully automatic|"
                r"suicide vest|ANFO)",
                6,
            ),
        ),
    ),
    Rule(
        "drug-manufacture",
        RiskTier.high,
        ("drugs",),
        "asks how to make or sell illegal drugs",
        (
            _near(
                r"(?:cook|make|synthesi[sz]\w*|produce|extract|press|sell|smuggle|cut)",
                r"(?:meth\b|methamphetamine|mdma|fentanyl|heroin|crack|\bghb\b|\blsd\b|\bdmt\b|"
                r"cocaine|ketamine|xanax|oxycodone)",
                6,
            ),
        ),
    ),
    Rule(
        "malware",
        RiskTier.high,
        ("cybersecurity",),
        "asks for working malicious software",
        (
            _near(
                r"(?:write|create|code|develop|build|make|give me)",
                r"(?:ransomware|keylogger|malware|computer virus|\bvirus\b|\bworm\b|botnet|trojan|"
                r"rootkit|spyware|cryptominer|exploit)",
                6,
            ),
        ),
    ),
    Rule(
        "account-intrusion",
        RiskTier.high,
        ("cybersecurity", "privacy"),
        "asks to break into or secretly read another person's account or device",
        (
            r"(?:hack|break|get|log|take over|bypass|brute[- ]force|access)\w*\W+"
            + (_GAP % 6)
            + r"(?:\bmy (?:ex|boss|wife|husband|girlfriend|boyfriend|neighbou?r|teacher|coworker|"
            r"sister|brother|partner|manager|stepdad)|someone|other people|another person|"
            r"\bhis\b|\bher\b|\btheir\b)\W+"
            + (_GAP % 4)
            + r"(?:account|e-?mail|gmail|outlook|phone|wi-?fi|whatsapp|instagram|facebook|"
            r"icloud|snapchat|tiktok|texts|messages)",
        ),
    ),
    Rule(
        "covert-surveillance",
        RiskTier.high,
        ("privacy",),
        "asks to track, film or read someone secretly",
        (
            r"(?:track|spy|film|record|read|see|install|follow|monitor)\w*\W+"
            + (_GAP % 8)
            + r"(?:without (?:him|her|them) (?:knowing|noticing)|"
            r"so (?:she|he|they) (?:doesn'?t|don'?t) "
            r"notice|secretly|remotely without)",
        ),
    ),
    Rule(
        "jailbreak-framing",
        RiskTier.medium,
        (),
        "wraps the request in an instruction-override or no-rules persona",
        (
            r"ignore (?:all |your |any )?(?:previous|prior|earlier) instructions|developer mode|"
            r"\bDAN\b|(?:no|without) (?:rules|restrictions|filters|limits)|jailbreak|"
            r"you answer everything",
        ),
    ),
)
"""The built-in rules, strongest first."""


@dataclass(frozen=True)
class RuleHit:
    """A rule that matched, and where."""

    rule: Rule
    matched: str
    turn: int

    def evidence(self) -> Evidence:
        """The hit as assessment evidence."""
        snippet = self.matched if len(self.matched) <= 80 else self.matched[:77] + "..."
        return Evidence(
            source="rule",
            detail=(
                f"rule `{self.rule.id}` ({self.rule.description}) matched “{snippet}” in user "
                f"turn {self.turn}; tier at least {self.rule.tier.value}"
            ),
            weight=1.0,
        )


def apply_rules(conversation: Conversation, rules: tuple[Rule, ...] = RULES) -> list[RuleHit]:
    """Every rule that matches a user turn of ``conversation`` (each rule reported once).

    Turns are checked one at a time so a pattern cannot be stitched together from unrelated turns;
    intent spread over turns is the classifier's job, which reads the whole conversation.
    """
    hits: list[RuleHit] = []
    user_turns = [
        (index, turn["content"])
        for index, turn in enumerate(conversation)
        if turn["role"] == "user"
    ]
    for rule in rules:
        for index, text in reversed(user_turns):
            matched = rule.search(text)
            if matched is not None:
                hits.append(RuleHit(rule=rule, matched=matched, turn=index))
                break
    return hits


def rule_floor(conversation: Conversation, rules: tuple[Rule, ...] = RULES) -> int:
    """The highest tier rank any matching rule sets for ``conversation`` (0, low, if none)."""
    return max((hit.rule.tier.rank for hit in apply_rules(conversation, rules)), default=0)
