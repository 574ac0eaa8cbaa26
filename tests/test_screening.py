"""Prohibited-purpose screening of search reasons against the department policy's term lists."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from alpr_workbench.governance.screening import ScreenResult, is_vague_reason, screen_text
from alpr_workbench.hotlist import is_never_alert
from alpr_workbench.policy import Policy, load_policy


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


REFUSED: list[tuple[str, str]] = [
    # immigration enforcement (SB 54)
    ("assist ICE with detainer", "immigration_enforcement"),
    ("ICE detainer - locate subject", "immigration_enforcement"),
    ("Locate for I.C.E.", "immigration_enforcement"),
    ("i.c.e request", "immigration_enforcement"),
    ("I C E", "immigration_enforcement"),
    ("I-C-E locate", "immigration_enforcement"),
    ("HSI request", "immigration_enforcement"),
    ("H.S.I. case support", "immigration_enforcement"),
    ("ERO fugitive ops", "immigration_enforcement"),
    ("ICE/ERO target vehicle", "immigration_enforcement"),
    ("CBP assist", "immigration_enforcement"),
    ("Border Patrol request", "immigration_enforcement"),
    ("border-patrol BOLO", "immigration_enforcement"),
    ("USBP agents requested plate history", "immigration_enforcement"),
    ("deportation", "immigration_enforcement"),
    ("Deportee vehicle", "immigration_enforcement"),
    ("dep0rtation case", "immigration_enforcement"),
    ("immigration status check", "immigration_enforcement"),
    ("1mmigration violation", "immigration_enforcement"),
    ("IMMIGRATION (civil/administrative)", "immigration_enforcement"),
    ("undocumented subject", "immigration_enforcement"),
    ("visa overstay", "immigration_enforcement"),
    ("overstayed visa, locate", "immigration_enforcement"),
    ("removal order - locate", "immigration_enforcement"),
    ("Homeland Security Investigations lead", "immigration_enforcement"),
    ("287(g) task force", "immigration_enforcement"),
    ("ice agent requested lookup", "immigration_enforcement"),
    # protected activity
    ("protest", "protected_activity"),
    ("2025 PROTEST", "protected_activity"),
    ("protesters at the freeway on-ramp", "protected_activity"),
    ("rally at city hall", "protected_activity"),
    ("vehicles at the demonstration downtown", "protected_activity"),
    ("abortion clinic visitors", "protected_activity"),
    ("Planned Parenthood parking lot", "protected_activity"),
    ("mosque attendance", "protected_activity"),
    ("cars at Friday prayers", "protected_activity"),
    ("journalist vehicle", "protected_activity"),
    ("news reporter covering council", "protected_activity"),
    ("gender-affirming care appointment", "protected_activity"),
    ("gender affirming clinic", "protected_activity"),
    ("transgender youth travel", "protected_activity"),
    ("union meeting attendees", "protected_activity"),
    ("political affiliation of owner", "protected_activity"),
    ("picketing workers at plant", "protected_activity"),
    ("activist vehicle", "protected_activity"),
    # civil or personal use
    ("custody dispute", "civil_or_personal"),
    ("child custody exchange", "civil_or_personal"),
    ("restraining order service (civil)", "civil_or_personal"),
    ("serve a restraining order", "civil_or_personal"),
    ("bail bondsman request", "civil_or_personal"),
    ("bail-bond skip", "civil_or_personal"),
    ("bounty hunter asked", "civil_or_personal"),
    ("my car", "civil_or_personal"),
    ("checking on my vehicle", "civil_or_personal"),
    ("ex-girlfriend", "civil_or_personal"),
    ("where is my ex", "civil_or_personal"),
    ("neighbor dispute", "civil_or_personal"),
    ("repossession", "civil_or_personal"),
    ("repo agent asked for location", "civil_or_personal"),
    ("civil matter", "civil_or_personal"),
    ("divorce proceedings", "civil_or_personal"),
    ("eviction follow up", "civil_or_personal"),
    ("skip tracing for debt", "civil_or_personal"),
    ("just curious", "civil_or_personal"),
    # personal characteristics
    ("hispanic male driver", "personal_characteristics"),
    ("Latino occupants", "personal_characteristics"),
    ("black male in hoodie", "personal_characteristics"),
    ("white males loitering", "personal_characteristics"),
    ("suspect ethnicity unknown", "personal_characteristics"),
    ("B/M driver, tall", "personal_characteristics"),
    ("asian gang car", "personal_characteristics"),
    ("nationality of driver", "personal_characteristics"),
    ("middle eastern men", "personal_characteristics"),
]

PASSED: list[str] = [
    "stolen vehicle recovery BPD-2026-000123",
    "armed robbery suspect vehicle seen on Olive Ave",
    "hit and run, white Civic partial plate",
    "Amber alert abduction",
    "missing person at risk",
    "burglary series on Magnolia Blvd in March",
    "March 3 burglary",
    "vehicle used in police pursuit",
    "fraud at Home Depot parking lot",
    "church street burglary",
    "Church St catalytic converter theft",
    "Temple City stolen vehicle",
    "burglary on Temple Ave",
    "notice to appear follow-up, DUI hit and run",
    "Office burglary at Media District",
    "Department of Justice stolen vehicle hotlist hit",
    "service station armed robbery",
    "price tag switching fraud, Costco",
    "Alice Street shooting",
    "generally matches robbery suspect",
    "suspect taken into custody, locate accomplice vehicle",
    "escaped custody, felony warrant",
    "restraining order violation, suspect vehicle",
    "bail jumping warrant, felony",
    "personal property stolen from vehicle",
    "neighborhood canvass for burglary suspect",
    "street race crash, VC 23103",
    "drag racing on Victory Blvd",
    "reporting party saw shooter's vehicle",
    "homicide suspect vehicle",
    "carjacking at gunpoint, 2021 black Tesla",
    "catalytic converter theft in progress",
    "DUI hit and run with injuries",
    "kidnapping suspect vehicle, Amber alert",
    "assault with a deadly weapon, silver Camry",
    "stolen plates from grey Prius",
    "arson at warehouse, suspect vehicle",
    "sexual assault suspect vehicle BPD-2026-000456",
    "narcotics sales, methamphetamine",
    "ice sales, crystal meth dealer",
    "shoplifting ring, Burbank Town Center",
    "vandalism to police cruiser",
    "Justice Center burglary",
    "residential burglary, victim's neighbor saw van",
    "vehicle fled traffic stop, felony evading",
    "robbery of ice cream truck",
    "grand theft auto, 10851 VC",
    "ADW on Alameda Ave",
    "identity theft, stolen credit cards used at Target",
    "shots fired, suspect vehicle white Civic",
    "stolen U-Haul truck",
    # near misses of the misspelling matcher and its false friends (docs/policy.md)
    "pursuit aborted, suspect vehicle fled",
    "burglary at Hinds Auto",
    "auto theft syndicate",
    "fraud at Home Depot parking lot, department store receipts",
    "ice pick assault",
    "crash on ice on the roads",
    "protective order violation",
    "suspect departed the scene in a grey sedan",
    "stolen Civic, case BPD-2026-000456",
    "1200 block, male driver fled",
]

REVIEW: list[str] = [
    "ice",
    "ICE",
    "ice investigation",
    "Ice - locate vehicle",
    "ICE assist?",
]


@pytest.mark.parametrize(("text", "category"), REFUSED)
def test_prohibited_purposes_are_refused(text: str, category: str, policy: Policy) -> None:
    result = screen_text({"reason_text": text}, policy=policy)
    assert result.verdict == "refuse", (text, result)
    assert result.category == category
    assert result.field == "reason_text"
    assert result.term is not None


@pytest.mark.parametrize("text", PASSED)
def test_legitimate_reasons_pass(text: str, policy: Policy) -> None:
    assert screen_text({"reason_text": text}, policy=policy) == ScreenResult("pass")


@pytest.mark.parametrize("text", REVIEW)
def test_bare_ice_is_held_for_review(text: str, policy: Policy) -> None:
    result = screen_text({"reason_text": text}, policy=policy)
    assert result.verdict == "review", (text, result)
    assert result.term == "ice"
    assert result.category == "immigration_enforcement"


def test_the_lists_are_large_enough() -> None:
    assert len(REFUSED) >= 40
    assert len(PASSED) >= 40
    assert all(cat in load_policy().prohibited_terms for _, cat in REFUSED)


def test_refuse_beats_review_and_names_the_field(policy: Policy) -> None:
    result = screen_text({"reason_text": "ice", "case_title": "HSI joint op"}, policy=policy)
    assert result == ScreenResult("refuse", "immigration_enforcement", "hsi", "case_title")


def test_drug_context_in_another_field_lets_ice_pass(policy: Policy) -> None:
    texts = {"reason_text": "ice", "case_title": "narcotics sales"}
    assert screen_text(texts, policy=policy).verdict == "pass"


def test_blank_and_missing_texts_pass(policy: Policy) -> None:
    assert screen_text({}, policy=policy).verdict == "pass"
    assert screen_text({"reason_text": None, "case_title": "  "}, policy=policy).verdict == "pass"


def test_terms_come_from_the_policy(policy: Policy) -> None:
    custom = policy.model_copy(
        update={"prohibited_terms": {"civil_or_personal": ("parking study",)}, "review_terms": ()}
    )
    assert screen_text({"r": "Parking-study  data"}, policy=custom).verdict == "refuse"
    assert screen_text({"r": "HSI request"}, policy=custom).verdict == "pass"
    assert screen_text({"r": "ice"}, policy=custom).verdict == "pass"


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "investigation",
        "Investigation.",
        "INV",
        "inv.",
        "invest",
        "investigative+",
        "Criminal Investigation",
        "***",
        ".",
        "other - not applicable",
        "Other: Not Applicable",
        "N/A",
        "25-138337",
        "inv 25-138337",
        "BPD-2026-000123",
        "Daytime search for best result",
    ],
)
def test_vague_reasons(text: str | None, policy: Policy) -> None:
    assert is_vague_reason(text, policy=policy)


@pytest.mark.parametrize(
    "text",
    [
        "stolen vehicle BPD-2026-000123",
        "armed robbery suspect",
        "investigation of burglary on Olive Ave",
        "other - stolen trailer",
        "missing person",
    ],
)
def test_specific_reasons_are_not_vague(text: str, policy: Policy) -> None:
    assert not is_vague_reason(text, policy=policy)


def _bench_screening():  # the corpus, its split rule and the scoring live in one place
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_screening.py"
    spec = importlib.util.spec_from_file_location("bench_screening", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_corpus_is_large_and_well_formed() -> None:
    bench = _bench_screening()
    phrases = bench.load_corpus()
    assert sum(p.label == "prohibited" for p in phrases) >= 150
    assert sum(p.label == "legitimate" for p in phrases) >= 150
    assert len({p.text for p in phrases}) == len(phrases), "duplicate phrases"
    for p in phrases:
        assert p.text.strip() and "\\u" not in p.text, p
        assert p.label in bench.LABELS and p.want in bench.WANTS and p.kind, p
        assert (p.label == "prohibited") == (p.want != "pass" and p.kind != "victim"), p
    assert {p.part for p in phrases} == {"tuning", "check"}


def test_screening_figures_on_the_tuning_part(policy: Policy) -> None:
    """Floors set a little under the measured figures (benchmarks/bench_screening.py)."""
    bench = _bench_screening()
    tuning = [p for p in bench.load_corpus() if p.part == "tuning"]
    s = bench.score(tuning, bench.screen(policy))
    assert s.recall >= 0.97, s
    assert s.precision >= 0.97, s
    assert s.legitimate_allowed >= 0.97, s
    assert s.refused_legitimate <= 1, s


@pytest.mark.parametrize(
    "text",
    [
        "monitor who attends the mosque",
        "vandalism at the mosque; list every attendee",
        "ICE asked about the arson at the mosque",
    ],
)
def test_surveillance_of_protected_place_is_still_refused(text: str, policy: Policy) -> None:
    assert screen_text({"reason_text": text}, policy=policy).verdict == "refuse", text


@pytest.mark.parametrize(
    "category", ["stolen_vehicle", "felony_warrant", "protection_order", "amber_alert", "gang"]
)
def test_crime_hotlist_categories_still_alert(category: str, policy: Policy) -> None:
    assert not is_never_alert(category, policy), category
