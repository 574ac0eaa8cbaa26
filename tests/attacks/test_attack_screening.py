"""Attacks on prohibited-purpose screening (issue #14): ways around the term lists.

Each test is a phrasing a hostile (or careless) user typed, and the verdict the screen must now
give. A prohibited purpose is caught when it is refused or held for a supervisor's review;
a legitimate investigation must not be refused.
"""

from __future__ import annotations

import pytest

from alpr_workbench.governance.screening import screen_text
from alpr_workbench.hotlist import is_never_alert
from alpr_workbench.policy import Policy, load_policy


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def _verdict(text: str, policy: Policy) -> str:
    return screen_text({"reason_text": text}, policy=policy).verdict


# Look-alike letters: Cyrillic, Greek and fullwidth characters that render as Latin ones.
CONFUSABLES = [
    "\u0456ce detainer",  # Cyrillic i
    "\u0406CE request",  # Cyrillic capital I
    "d\u0435portation",  # Cyrillic e
    "imm\u0456gration hold",
    "\u0399\u0421\u0395 agents",  # Greek Iota, Cyrillic Es, Greek Epsilon
    "dep\u03bfrtation",  # Greek omicron
    "pr\u043etest",
    "m\u043esque attendance",
    "m\u0443 car",  # Cyrillic u
]

# Format characters (category Cf) that split a word without showing.
FORMAT_CHARACTERS = [
    "de\u200bportation",  # zero-width space
    "immi\u00adgration",  # soft hyphen
    "depor\u200ctation order",  # zero-width non-joiner
    "undoc\u2060umented",  # word joiner
    "pro\ufefftest",  # zero-width no-break space
]

MISSPELLINGS = [
    "deprotation",
    "imigration check",
    "undocumneted driver",
    "boarder patrol request",
    "demonstartion downtown",
    "journlist vehicle",
    "custdy dispute",
    "reposession",
]

SPANISH = [
    "inmigración pidió la ubicación",
    "migra",
    "indocumentado manejando",
    "estatus migratorio del conductor",
    "sin papeles",
    "patrulla fronteriza",
    "mi carro",
]

PARAPHRASES = [
    "check papers of the occupants",
    "citizenship status of owner",
]

# A context word ("drug", "meth") that lets a bare "ice" pass must not unlock the agency.
UNLOCKED = [
    "ICE asked us to find this car, drug case",
    "drug case, ICE wants the location",
    "meth sales; also ICE needs the address",
]


@pytest.mark.parametrize(
    "text", CONFUSABLES + FORMAT_CHARACTERS + MISSPELLINGS + SPANISH + PARAPHRASES + UNLOCKED
)
def test_prohibited_phrasings_are_caught(text: str, policy: Policy) -> None:
    result = screen_text({"reason_text": text}, policy=policy)
    assert result.verdict != "pass", (text, result)


@pytest.mark.parametrize("text", UNLOCKED)
def test_ice_asked_is_refused_whatever_the_drug_context(text: str, policy: Policy) -> None:
    assert _verdict(text, policy) == "refuse"


# Legitimate businesses that the old screen refused (a restaurant chain, a sports store).
LEGITIMATE = [
    "robbery at Rally's on Olive Ave",
    "Rally\u2019s drive-thru armed robbery",
    "burglary at Deportes Martinez",
    "Deportes Martinez shoplifting",
]


@pytest.mark.parametrize("text", LEGITIMATE)
def test_businesses_named_like_terms_pass(text: str, policy: Policy) -> None:
    assert _verdict(text, policy) == "pass", text


# A crime against a protected place or group is held for a supervisor, not a dead end.
CRIMES_AGAINST = [
    "hate crime vandalism at the mosque",
    "arson at a Jewish community centre",
    "threats against the reproductive health clinic",
    "swastika graffiti on the synagogue",
]


@pytest.mark.parametrize("text", CRIMES_AGAINST)
def test_crime_against_protected_place_is_held_for_review(text: str, policy: Policy) -> None:
    result = screen_text({"reason_text": text}, policy=policy)
    assert result.verdict == "review", (text, result)
    assert result.category == "protected_activity"


@pytest.mark.parametrize(
    "category",
    [
        "ice_hold",
        "ICE Hold",
        "removal_order",
        "deportation",
        "hsi",
        "ero_target",
        "d\u0435portable_alien",  # Cyrillic e
        "immi\u00adgration_violator",  # soft hyphen
        "imigration_violator",
        "ice",
    ],
)
def test_immigration_hotlist_categories_never_alert(category: str, policy: Policy) -> None:
    assert is_never_alert(category, policy), category
