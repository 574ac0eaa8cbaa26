"""Screen the free text given with a search for purposes the department's policy prohibits.

The term lists live in the policy file (``prohibited_terms``, ``review_terms``,
``review_context_allowed``, ``vague_reasons``); this module only knows how to match them.

Matching rules
--------------
* Case-insensitive and on whole words: the text is split into words of letters and digits, so
  punctuation, hyphens, slashes and extra spaces never matter ("gender-affirming" and
  "gender  affirming" are the same text; "police", "justice" or "notice" never match "ice").
* A term word ending in ``*`` matches any word starting with it; the last word of a term
  without ``*`` also matches its plural in ``s``/``es``.
* Simple obfuscation is undone: dotted, hyphenated or spaced-out acronyms ("I.C.E.", "h.s.i",
  "E-R-O", "i c e") are read as the word, and in a word of at least three letters, digits that
  stand for letters ("dep0rt", "1mmigration") are read as those letters. The spelled-out form
  is kept too, so a policy term written with dots ("i.c.e.") matches only a spelled-out
  acronym: nobody spells the drug "I.C.E.", so that is refused while a bare "ice" is reviewed.
* Refuse beats review beats pass. A text is held for review when it holds a ``review_terms``
  word (a bare "ice", which can mean the drug) and none of the texts screened together holds
  a ``review_context_allowed`` term ("meth", "narcotics", "ice cream"...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from alpr_workbench.policy import Policy

__all__ = ["ScreenResult", "is_vague_reason", "screen_text"]

Verdict = Literal["pass", "review", "refuse"]

# A dotted acronym ("i.c.e.", "u.s") or a hyphenated one of three letters or more ("i-c-e"),
# then any word of letters and digits. Term words may end in "*".
_WORD = re.compile(
    r"(?<![a-z0-9])[a-z](?:\.[a-z])+\.?(?![a-z0-9])"
    r"|(?<![a-z0-9])[a-z](?:-[a-z]){2,}(?![a-z0-9])"
    r"|[a-z0-9]+\*?"
)
# Digits read as letters in obfuscated words; "1" may stand for "i" or "l".
_LEET: tuple[dict[str, str], ...] = (
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"},
    {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t"},
)
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
class _Term:
    text: str  # as written in the policy
    category: str | None
    words: tuple[tuple[str, bool], ...]  # (word, is_prefix)


@dataclass(frozen=True)
class _Matcher:
    refuse: tuple[_Term, ...]
    review: tuple[_Term, ...]
    context: tuple[_Term, ...]
    review_category: dict[str, str | None]
    vague: frozenset[str]
    case_number: re.Pattern[str] | None


_CACHE: dict[int, tuple[Policy, _Matcher]] = {}


def _normalise(text: str) -> str:
    """Lower-case, accents dropped, punctuation other than ``.-*`` made a space."""
    text = unicodedata.normalize("NFKD", text).lower()
    return "".join(
        " " if unicodedata.category(ch)[0] in "PSZC" and ch not in ".-*" else ch
        for ch in text
        if not unicodedata.combining(ch)
    )


def _word_forms(word: str) -> frozenset[str]:
    """Every reading of one word of text: as written, without acronym dots, de-obfuscated."""
    if "." in word or "-" in word:
        letters = word.replace(".", "").replace("-", "")
        return frozenset({letters, ".".join(letters) + "."})
    forms = {word}
    n_letters = sum(ch.isalpha() for ch in word)
    n_digits = len(word) - n_letters
    if n_digits and n_letters >= 3 and n_digits <= n_letters:
        for table in _LEET:
            forms.add("".join(table.get(ch, ch) for ch in word))
    return frozenset(forms)


def _text_words(text: str) -> list[frozenset[str]]:
    words = [m.group().rstrip("*") for m in _WORD.finditer(_normalise(text)) if m.group() != "*"]
    # Three or more letters spelled out one by one ("i c e") are read as one acronym.
    merged: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        merged.extend([".".join(run) + "."] if len(run) >= 3 else run)
        run = []
        if word:
            merged.append(word)
    return [_word_forms(word) for word in merged]


def _term_words(term: str) -> tuple[tuple[str, bool], ...]:
    words: list[tuple[str, bool]] = []
    for m in _WORD.finditer(_normalise(term)):
        word = m.group()
        if "." in word or "-" in word:
            letters = word.replace(".", "").replace("-", "")
            words.append((".".join(letters) + ".", False))
        elif word != "*":
            words.append((word.rstrip("*"), word.endswith("*")))
    return tuple(words)


def _compile_terms(terms: Iterable[str], category: str | None) -> list[_Term]:
    out = []
    for term in terms:
        words = _term_words(term)
        if words:
            out.append(_Term(text=term, category=category, words=words))
    return out


def _matcher(policy: Policy) -> _Matcher:
    cached = _CACHE.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    refuse: list[_Term] = []
    for category, terms in policy.prohibited_terms.items():
        refuse.extend(_compile_terms(terms, category))
    review = _compile_terms(policy.review_terms, None)
    # A review term takes the category of the prohibited terms that start with it ("ice" ->
    # the category of "ice detainer"), so the caller learns why the text is held.
    review_category: dict[str, str | None] = {}
    for term in review:
        review_category[term.text] = next(
            (t.category for t in refuse if t.words[0][0] == term.words[0][0]), None
        )
    try:
        case_number = re.compile(policy.case_number_pattern.strip("^$"), re.IGNORECASE)
    except re.error:
        case_number = None
    matcher = _Matcher(
        refuse=tuple(refuse),
        review=tuple(review),
        context=tuple(_compile_terms(policy.review_context_allowed, None)),
        review_category=review_category,
        vague=frozenset(_vague_key(v, None) for v in policy.vague_reasons),
        case_number=case_number,
    )
    if len(_CACHE) >= _MAX_CACHED_POLICIES:
        _CACHE.clear()
    _CACHE[id(policy)] = (policy, matcher)
    return matcher


# Screening is pure, and the same reason and case title come back search after search.
_RESULTS: dict[tuple[int, tuple[tuple[str, str | None], ...]], tuple[Policy, ScreenResult]] = {}


def _word_matches(forms: frozenset[str], word: str, is_prefix: bool, is_last: bool) -> bool:
    if is_prefix:
        return any(f.startswith(word) for f in forms)
    if word in forms:
        return True
    return is_last and len(word) >= 3 and (word + "s" in forms or word + "es" in forms)


def _find(term: _Term, words: list[frozenset[str]]) -> int | None:
    """Index of the first word where ``term`` matches, or ``None``."""
    n = len(term.words)
    for start in range(len(words) - n + 1):
        if all(
            _word_matches(words[start + i], w, p, i == n - 1) for i, (w, p) in enumerate(term.words)
        ):
            return start
    return None


def _first_hit(terms: Iterable[_Term], words: list[frozenset[str]]) -> _Term | None:
    """The term matching earliest in the text (the longest one on a tie)."""
    best: tuple[int, int, _Term] | None = None
    for term in terms:
        at = _find(term, words)
        if at is not None and (best is None or (at, -len(term.words)) < best[:2]):
            best = (at, -len(term.words), term)
    return best[2] if best else None


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
    tokenised = {
        label: _text_words(text)
        for label, text in texts.items()
        if text is not None and text.strip()
    }
    for label, words in tokenised.items():
        hit = _first_hit(matcher.refuse, words)
        if hit is not None:
            return ScreenResult("refuse", hit.category, hit.text, label)
    for label, words in tokenised.items():
        hit = _first_hit(matcher.review, words)
        if hit is None:
            continue
        if any(_first_hit(matcher.context, w) is not None for w in tokenised.values()):
            return ScreenResult("pass")
        return ScreenResult("review", matcher.review_category.get(hit.text), hit.text, label)
    return ScreenResult("pass")


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
