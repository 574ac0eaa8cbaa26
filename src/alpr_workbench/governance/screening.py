"""Screen the free text given with a search for purposes the department's policy prohibits.

The term lists live in the policy file (``prohibited_terms``, ``review_terms``,
``review_context_allowed``, ``prohibited_false_friends``, ``crime_against_terms``,
``surveillance_terms``, ``vague_reasons``); this module only knows how to judge the matches.
Folding and matching (look-alike letters, zero-width characters, accents, acronyms,
misspellings) are those of :mod:`alpr_workbench.termmatch`, shared with the hotlist's
never-alert categories. See [policy](../../../docs/policy.md#prohibited-purpose-screening).

Verdicts
--------
* ``"refuse"`` when a text holds a prohibited term. Refuse beats review beats pass.
* ``"review"`` (held for a supervisor) when every prohibited term found is of a category listed
  in ``crime_against_terms``, the texts name a crime against the protected place or group
  ("hate crime vandalism at the mosque") and hold no ``surveillance_terms`` word ("monitor who
  attends the mosque" is refused).
* ``"review"`` also when a text holds a ``review_terms`` word (a bare "ice", which can mean the
  drug) that no ``review_context_allowed`` term explains: one within ``review_context_window``
  words in the same text, or in another text screened with it when the ice text is that short.
  A context word only explains the review term next to it; it never unlocks a prohibited term
  ("ICE asked us ..., drug case" is refused).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from alpr_workbench.policy import Policy
from alpr_workbench.termmatch import Hit, TermIndex, policy_terms, text_words

__all__ = ["ScreenResult", "is_vague_reason", "screen_text"]

Verdict = Literal["pass", "review", "refuse"]

_MAX_CACHED_POLICIES = 8


@dataclass(frozen=True)
class ScreenResult:
    """Outcome of screening the free text given with one search.

    Attributes
    ----------
    verdict
        ``"refuse"`` (a prohibited purpose), ``"review"`` (hold for a supervisor) or ``"pass"``.
    category
        Policy category of the term that matched (``"immigration_enforcement"``,
        ``"protected_activity"``, ``"civil_or_personal"``, ``"personal_characteristics"``),
        or ``None`` when the verdict is ``"pass"``.
    term
        The policy term that matched, as written in the policy.
    field
        The caller's label of the text that matched (e.g. ``"reason_text"``).
    """

    verdict: Verdict
    category: str | None = None
    term: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class _Matcher:
    refuse: TermIndex
    review: TermIndex
    context: TermIndex
    crime_against: TermIndex
    surveillance: TermIndex
    review_category: dict[str, str | None]
    window: int
    vague: frozenset[str]
    case_number: re.Pattern[str] | None


_CACHE: dict[int, tuple[Policy, _Matcher]] = {}


def _matcher(policy: Policy) -> _Matcher:
    cached = _CACHE.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    terms = policy_terms(policy)
    try:
        case_number = re.compile(policy.case_number_pattern.strip("^$"), re.IGNORECASE)
    except re.error:
        case_number = None
    matcher = _Matcher(
        refuse=terms.refuse,
        review=terms.review,
        context=TermIndex({"": policy.review_context_allowed}),
        crime_against=TermIndex(policy.crime_against_terms),
        surveillance=TermIndex({"": policy.surveillance_terms}),
        review_category=terms.review_category,
        window=policy.review_context_window,
        vague=frozenset(_vague_key(v, None) for v in policy.vague_reasons),
        case_number=case_number,
    )
    if len(_CACHE) >= _MAX_CACHED_POLICIES:
        _CACHE.clear()
    _CACHE[id(policy)] = (policy, matcher)
    return matcher


# Screening is pure, and the same reason and case title come back search after search.
_RESULTS: dict[tuple[int, tuple[tuple[str, str | None], ...]], tuple[Policy, ScreenResult]] = {}


def screen_text(texts: Mapping[str, str | None], *, policy: Policy) -> ScreenResult:
    """Screen the free text given with a search against the policy's prohibited purposes.

    Parameters
    ----------
    texts
        The texts to screen, by a label of the caller's choice, e.g.
        ``{"reason_text": ..., "case_title": ...}``. ``None`` and blank texts are skipped.
    policy
        The policy whose ``prohibited_terms``, ``review_terms`` and ``review_context_allowed``
        apply.

    Returns
    -------
    ScreenResult
        ``"refuse"`` when any text holds a prohibited term (texts in the mapping's order, then
        the earliest term in the text); otherwise ``"review"`` when a text holds a review
        term and no text holds an allowed context term; otherwise ``"pass"``.

    Examples
    --------
    >>> from alpr_workbench.policy import load_policy
    >>> policy = load_policy()
    >>> result = screen_text({"reason_text": "Locate for I.C.E."}, policy=policy)
    >>> result.verdict, result.category, result.term, result.field
    ('refuse', 'immigration_enforcement', 'i.c.e.', 'reason_text')
    >>> screen_text({"reason_text": "ICE"}, policy=policy).verdict
    'review'
    >>> screen_text({"reason_text": "ice sales, methamphetamine"}, policy=policy).verdict
    'pass'
    >>> screen_text({"reason_text": "Church St burglary, March 3"}, policy=policy).verdict
    'pass'
    """
    key = (id(policy), tuple(texts.items()))
    cached = _RESULTS.get(key)
    if cached is not None and cached[0] is policy:
        return cached[1]
    result = _screen_uncached(texts, policy=policy)
    if len(_RESULTS) >= 4096:
        _RESULTS.clear()
    _RESULTS[key] = (policy, result)
    return result


def _screen_uncached(texts: Mapping[str, str | None], *, policy: Policy) -> ScreenResult:
    matcher = _matcher(policy)
    words = {
        label: text_words(text)
        for label, text in texts.items()
        if text is not None and text.strip()
    }
    refused = [(label, hit) for label, w in words.items() for hit in matcher.refuse.find(w)]
    if refused:
        label, hit = refused[0]
        if _crime_against(refused, words, matcher):
            return ScreenResult("review", hit.term.category, hit.term.text, label)
        return ScreenResult("refuse", hit.term.category, hit.term.text, label)
    context = {label: matcher.context.find(w) for label, w in words.items()}
    for label, w in words.items():
        for hit in matcher.review.find(w):
            if not _explained(hit, label, len(w), context, matcher.window):
                category = matcher.review_category.get(hit.term.text)
                return ScreenResult("review", category, hit.term.text, label)
    return ScreenResult("pass")


def _crime_against(
    refused: list[tuple[str, Hit]], words: Mapping[str, list[frozenset[str]]], matcher: _Matcher
) -> bool:
    """True when every prohibited term names a protected place or group that a crime targets."""
    if any(matcher.surveillance.find(w) for w in words.values()):
        return False
    crimes = {h.term.category for w in words.values() for h in matcher.crime_against.find(w)}
    return all(hit.term.category in crimes for _, hit in refused)


def _explained(
    hit: Hit, label: str, n_words: int, context: Mapping[str, list[Hit]], window: int
) -> bool:
    """True when a context term stands next to this review term, or beside a short text."""
    if any(c.start - window <= hit.start and hit.end <= c.end + window for c in context[label]):
        return True
    return n_words <= window and any(context[other] for other in context if other != label)


def _vague_key(text: str, case_number: re.Pattern[str] | None) -> str:
    """The words of a reason that could state a purpose: no punctuation, numbers or case #."""
    text = unicodedata.normalize("NFKC", text).lower()
    if case_number is not None:
        text = case_number.sub(" ", text)
    words = re.findall(r"[^\W_]+", text)
    return " ".join(w for w in words if not any(ch.isdigit() for ch in w))


def is_vague_reason(text: str | None, *, policy: Policy) -> bool:
    """True when a search reason states no purpose at all.

    A reason is vague when it is blank, holds no words (``"***"``, ``"."``, a bare case
    number) or, once punctuation, numbers and case numbers are dropped, is one of the
    policy's ``vague_reasons`` (``"investigation"``, ``"inv"``, ``"other - not
    applicable"``...).

    Parameters
    ----------
    text
        The reason as typed.
    policy
        The policy whose ``vague_reasons`` and ``case_number_pattern`` apply.

    Returns
    -------
    bool
        Whether the reason is vague.

    Examples
    --------
    >>> from alpr_workbench.policy import load_policy
    >>> policy = load_policy()
    >>> [is_vague_reason(t, policy=policy) for t in (None, "***", "INV.", "Investigative+")]
    [True, True, True, True]
    >>> is_vague_reason("stolen vehicle BPD-2026-000123", policy=policy)
    False
    """
    if text is None or not text.strip():
        return True
    matcher = _matcher(policy)
    key = _vague_key(text, matcher.case_number)
    return key == "" or key in matcher.vague
