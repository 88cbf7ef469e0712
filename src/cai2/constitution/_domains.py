"""The domains a constitution layer may activate on, shared with the context assessment.

The context assessment labels each prompt with zero or more of these names; a layer whose
``activation.domains`` names a domain outside this list could never fire, so the loader rejects it.
"""

from __future__ import annotations

KNOWN_DOMAINS: tuple[str, ...] = (
    "general",
    "healthcare",
    "mental_health",
    "self_harm",
    "finance",
    "legal",
    "cybersecurity",
    "chemistry_biology",
    "weapons",
    "violence",
    "extremism",
    "privacy",
    "politics",
    "creative_writing",
    "education",
    "minors",
    "sexual_content",
    "hate_harassment",
    "fraud_deception",
    "drugs",
)
"""Every domain name a layer may activate on, in a stable order."""

DOMAIN_DESCRIPTIONS: dict[str, str] = {
    "general": "Everyday questions with no specialised risk.",
    "healthcare": "Symptoms, diagnoses, treatments, medication and dosing.",
    "mental_health": "Emotional distress, therapy, psychiatric conditions.",
    "self_harm": "Suicide, self-injury, eating disorders.",
    "finance": "Investing, loans, taxes, personal and corporate money decisions.",
    "legal": "Laws, contracts, disputes, rights and legal procedure.",
    "cybersecurity": "Hacking, malware, exploits, network defence and intrusion.",
    "chemistry_biology": "Dangerous chemicals, pathogens, toxins and their synthesis.",
    "weapons": "Firearms, explosives and other weapons.",
    "violence": "Physical harm to people or animals.",
    "extremism": "Terrorism, radicalisation and violent ideologies.",
    "privacy": "Personal data, surveillance, doxxing, tracking people.",
    "politics": "Elections, parties, policy and political persuasion.",
    "creative_writing": "Fiction, poetry, role-play and other invented content.",
    "education": "Teaching, homework, tutoring and study help.",
    "minors": "Anything involving or addressed to children and teenagers.",
    "sexual_content": "Sexual or explicit material.",
    "hate_harassment": "Slurs, harassment, demeaning content about groups or people.",
    "fraud_deception": "Scams, phishing, impersonation, forgery and manipulation.",
    "drugs": "Illegal or controlled substances and their use or manufacture.",
}
"""One-line description of each known domain, for docs and for the context assessment."""
