"""Match the policy's term lists in text: the one matcher for free text and hotlist categories.

Free text (``governance/screening.py``) and hotlist categories (``hotlist/_common.py``) are
folded, split into words and matched here, so both see the same letters. See
[policy](../../docs/policy.md#prohibited-purpose-screening).

Folding (a skeleton in the spirit of Unicode TR39)
--------------------------------------------------
1. Format characters (category ``Cf``: zero-width spaces and joiners, soft hyphens, bidi marks)
   are removed, so they cannot split a word.
2. NFKC: fullwidth and styled letters become plain ones.
3. Cyrillic and Greek letters that look like Latin ones become those letters (``_CONFUSABLES``).
4. Case folding, then accents dropped (``deportación`` is ``deportacion``).

Words
-----
Text splits into words of letters and digits; an apostrophe inside a word is dropped
(``Rally's`` is ``rallys``). Dotted, hyphenated or spaced-out acronyms (``I.C.E.``, ``e-r-o``,
``i c e``) are read as one word, and digits that stand for letters (``dep0rt``) as letters.

A term word matches a text word when it is equal, a plural in ``s``/``es``, a prefix (a term
word ending in ``*``) or a misspelling: for a term word of at least 5 letters (a prefix: 6),
same first letter and at most 1 edit (2 from 9 letters; an edit is an insertion, deletion,
substitution or swap of neighbours); a misspelt prefix needs a text word at most that many
letters shorter. A word on the policy's ``prohibited_false_friends`` list (``deportes``,
``department``, ``civic``...) never matches a term.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from alpr_workbench.policy import Policy

__all__ = [
    "Hit", "PolicyTerms", "TermIndex", "fold_text", "policy_terms", "text_words", "within_edits",
]

# Letters that render like Latin ones (Unicode confusables.txt, the common cases).
_CONFUSABLE_PAIRS = (
    # Cyrillic capitals, then small letters
    "АA ВB ЕE ЅS ІI ЈJ КK МM НH ОO РP СC ТT УY ХX ЁE ЇI ԌG ԚQ ԜW Һh"
    " аa вb еe ѕs іi јj кk мm нh оo рp сc тt уy хx ёe їi ԁd һh ԛq ԝw ӏl ɡg"
    # Greek capitals, then small letters
    " ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX"
    " αa βb γy εe ιi κk νv οo ρp τt υu χx ωw"
    # Latin look-alikes and apostrophes
    " ıi ȷj ℓl ‘' ’' ʼ' ′' ＇'"
)
_CONFUSABLES = str.maketrans({pair[0]: pair[1] for pair in _CONFUSABLE_PAIRS.split()})

# A dotted acronym ("i.c.e.", "u.s") or a hyphenated one of three letters or more ("i-c-e"),
# then any word of letters and digits. Term words may end in "*".
_WORD = re.compile(
    r"(?<![a-z0-9])[a-z](?:\.[a-z])+\.?(?![a-z0-9])"
    r"|(?<![a-z0-9])[a-z](?:-[a-z]){2,}(?![a-z0-9])"
    r"|[^\W_]+\*?"
)
# Digits read as letters in obfuscated words; "1" may stand for "i" or "l".
_LEET: tuple[dict[str, str], ...] = (
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"},
    {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t"},
)
_FUZZY_MIN_LETTERS = 5  # shorter term words match exactly ("ice", "ero", "migra" do not drift)
_FUZZY_TWO_EDITS_LETTERS = 9
_MAX_CACHED_WORDS = 20_000
_JOIN_MIN_LETTERS = 4  # "immi gration" is read joined; "Dep. Ortiz" is not "deport..."

WordKey = tuple[str, bool]  # (term word, is_prefix)


def fold_text(text: str) -> str:
    r"""Fold look-alike text onto plain lower-case Latin letters.

    Parameters
    ----------
    text
        Any text.

    Returns
    -------
    str
        The text without format characters, NFKC-normalised, with Cyrillic and Greek
        look-alikes mapped to Latin letters, case-folded and without accents.

    Examples
    --------
    >>> fold_text("D\u0435por\u200btación ＩＣＥ")
    'deportacion ice'
    """
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES).casefold()
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


def _spaced(text: str) -> str:
    """Fold, drop apostrophes inside words, and make other punctuation (not ``.-*``) a space."""
    text = re.sub(r"(?<=\w)'(?=\w)", "", fold_text(text))
    return "".join(
        " " if unicodedata.category(ch)[0] in "PSZC" and ch not in ".-*" else ch for ch in text
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


def text_words(text: str) -> list[frozenset[str]]:
    """Split text into words, each given as the set of its readings.

    Examples
    --------
    >>> [sorted(w) for w in text_words("I C E, dep0rt")]
    [['i.c.e.', 'ice'], ['dep0rt', 'deport']]
    """
    words = [m.group().rstrip("*") for m in _WORD.finditer(_spaced(text)) if m.group() != "*"]
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


def _term_words(term: str) -> tuple[WordKey, ...]:
    words: list[WordKey] = []
    for m in _WORD.finditer(_spaced(term)):
        word = m.group()
        if "." in word or "-" in word:
            letters = word.replace(".", "").replace("-", "")
            words.append((".".join(letters) + ".", False))
        elif word != "*":
            words.append((word.rstrip("*"), word.endswith("*")))
    return tuple(words)


def _within(a: str, b: str, limit: int) -> bool:
    """True when ``a`` and ``b`` are at most ``limit`` edits apart (optimal string alignment)."""
    if abs(len(a) - len(b)) > limit:
        return False
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            best = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            cur[j] = best
        if min(cur) > limit:
            return False
        before, prev = prev, cur
    return prev[-1] <= limit


def within_edits(a: str, b: str, limit: int = 1) -> bool:
    """True when ``a`` and ``b`` are at most ``limit`` edits apart (the screening's measure).

    Examples
    --------
    >>> within_edits("investigation", "lnvestigation"), within_edits("ice", "ero")
    (True, False)
    """
    return _within(a, b, limit)


def _fuzzy(form: str, word: str, is_prefix: bool) -> bool:
    """A misspelling of ``word`` (same first letter, 1 edit, or 2 from 9 letters)."""
    shortest = _FUZZY_MIN_LETTERS + is_prefix  # a 5-letter stem is too short ("hinds", "hindu*")
    if len(word) < shortest or not form.isalpha() or form[0] != word[0]:
        return False
    limit = 2 if len(word) >= _FUZZY_TWO_EDITS_LETTERS else 1
    if not is_prefix:
        return _within(form, word, limit)
    if len(form) < len(word) - limit:
        return False
    lengths = range(len(word) - limit, min(len(word) + limit, len(form)) + 1)
    return any(_within(form[:k], word, limit) for k in lengths)


@dataclass(frozen=True)
class Term:
    """One term of a policy list, compiled.

    Attributes
    ----------
    text
        The term as written in the policy.
    category
        The policy category it belongs to, or ``""``.
    words
        Its words, each with whether it is a prefix (written with ``*``).
    """

    text: str
    category: str
    words: tuple[WordKey, ...]


@dataclass(frozen=True)
class Hit:
    """Where a term matched in a text: words ``start`` to ``end`` (exclusive)."""

    term: Term
    start: int
    end: int


@dataclass
class TermIndex:
    """Terms indexed by their first word, for matching many texts quickly.

    Parameters
    ----------
    terms
        Term lists by category (``""`` for an uncategorised list).
    false_friends
        Words (a final ``*`` makes a prefix) that never match any term.
    """

    terms: Mapping[str, Iterable[str]]
    false_friends: Sequence[str] = ()
    _by_first: dict[WordKey, list[Term]] = field(init=False, default_factory=dict)
    _by_letter: dict[str, list[WordKey]] = field(init=False, default_factory=dict)
    _words: set[WordKey] = field(init=False, default_factory=set)
    _cache: dict[str, frozenset[WordKey]] = field(init=False, default_factory=dict)
    _friends: list[WordKey] = field(init=False, default_factory=list)
    _terms: list[Term] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        for category, texts in self.terms.items():
            for text in texts:
                words = _term_words(text)
                if words:
                    term = Term(text, category, words)
                    self._terms.append(term)
                    self._by_first.setdefault(words[0], []).append(term)
                    self._words.update(words)
        for key in self._words:
            self._by_letter.setdefault(key[0][:1], []).append(key)
        for word in map(fold_text, self.false_friends):
            self._friends.append((word.rstrip("*"), word.endswith("*")))

    def all_terms(self) -> list[Term]:
        """Every term, compiled, in the order given."""
        return list(self._terms)

    def _keys(self, form: str) -> frozenset[WordKey]:
        """The term words that one reading of a text word matches (cached)."""
        cached = self._cache.get(form)
        if cached is not None:
            return cached
        if self._is_friend(form):
            keys: frozenset[WordKey] = frozenset()
        else:
            keys = frozenset(
                (word, is_prefix)
                for word, is_prefix in self._by_letter.get(form[:1], ())
                if (form.startswith(word) if is_prefix else form in (word, word + "s", word + "es"))
                or _fuzzy(form, word, is_prefix)
            )
        if len(self._cache) >= _MAX_CACHED_WORDS:
            self._cache.clear()
        self._cache[form] = keys
        return keys

    def _is_friend(self, form: str) -> bool:
        return any(form.startswith(w) if p else form == w for w, p in self._friends)

    def _joined_keys(self, left: frozenset[str], right: frozenset[str]) -> set[WordKey]:
        """The term words two neighbouring words of text spell together, exactly or as a prefix.

        Both halves must be words of ``_JOIN_MIN_LETTERS`` letters or more, so an acronym
        spelt out ("i c e") or an abbreviation ("Dep. Ortiz") is not joined.
        """
        found: set[WordKey] = set()
        for a in left:
            for b in right:
                if min(len(a), len(b)) < _JOIN_MIN_LETTERS or not (a.isalpha() and b.isalpha()):
                    continue
                form = a + b
                # A false friend on either side ("Deportes Martinez") is not a split term.
                if self._is_friend(a) or self._is_friend(b) or self._is_friend(form):
                    continue
                found.update(
                    (word, is_prefix)
                    for word, is_prefix in self._by_letter.get(form[:1], ())
                    if (form.startswith(word) if is_prefix
                        else form in (word, word + "s", word + "es"))
                )
        return found

    def find(self, words: Sequence[frozenset[str]]) -> list[Hit]:
        """Every match of a term in a text split by :func:`text_words`, in text order.

        Examples
        --------
        >>> index = TermIndex({"immigration_enforcement": ["deport*", "border patrol"]})
        >>> [h.term.text for h in index.find(text_words("Boarder Patrol, deprotation"))]
        ['border patrol', 'deport*']
        """
        keys = [frozenset().union(*(self._keys(f) for f in forms)) for forms in words]
        hits: list[Hit] = []
        for start, first in enumerate(keys):
            for key in first:
                for term in self._by_first.get(key, ()):
                    end = start + len(term.words)
                    if end <= len(keys) and all(
                        w in keys[start + i] for i, w in enumerate(term.words[1:], 1)
                    ):
                        hits.append(Hit(term, start, end))
        # A word split by one space ("immi gration") is read joined too, matched exactly.
        for start in range(len(words) - 1):
            for key in self._joined_keys(words[start], words[start + 1]):
                for term in self._by_first.get(key, ()):
                    end = start + 1 + len(term.words)
                    if end <= len(keys) and all(
                        w in keys[start + 1 + i] for i, w in enumerate(term.words[1:], 1)
                    ):
                        hits.append(Hit(term, start, end))
        hits.sort(key=lambda h: (h.start, -len(h.term.words), h.term.text))
        return hits


@dataclass
class PolicyTerms:
    """A policy's prohibited and review terms, compiled once and shared by every caller.

    Attributes
    ----------
    refuse
        ``prohibited_terms``, by category.
    review
        ``review_terms`` (a bare "ice").
    review_category
        For each review term, the category of the prohibited terms that start with it ("ice"
        -> the category of "ice detainer").
    """

    refuse: TermIndex
    review: TermIndex
    review_category: dict[str, str | None]
    _never_alert: dict[str, bool] = field(default_factory=dict)

    def names_category(self, text: str, categories: Iterable[str]) -> bool:
        """True when ``text`` holds a prohibited or review term of one of ``categories``.

        Used for hotlist categories, so ``"ice_hold"`` is read as the words "ice hold".

        Examples
        --------
        >>> from alpr_workbench.policy import load_policy
        >>> terms = policy_terms(load_policy())
        >>> [terms.names_category(c, ["immigration_enforcement"]) for c in ("ice_hold", "arson")]
        [True, False]
        """
        wanted = frozenset(categories)
        key = "\x1f".join([text, *sorted(wanted)])
        cached = self._never_alert.get(key)
        if cached is None:
            words = text_words(text)
            cached = any(h.term.category in wanted for h in self.refuse.find(words)) or any(
                self.review_category.get(h.term.text) in wanted for h in self.review.find(words)
            )
            if len(self._never_alert) >= _MAX_CACHED_WORDS:
                self._never_alert.clear()
            self._never_alert[key] = cached
        return cached


_POLICY_TERMS: dict[int, tuple[Policy, PolicyTerms]] = {}
_MAX_CACHED_POLICIES = 8


def policy_terms(policy: Policy) -> PolicyTerms:
    """The compiled term lists of ``policy`` (cached while the policy object lives).

    Parameters
    ----------
    policy
        Whose ``prohibited_terms``, ``review_terms`` and ``prohibited_false_friends`` apply.

    Returns
    -------
    PolicyTerms
        The compiled lists.
    """
    cached = _POLICY_TERMS.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    friends = policy.prohibited_false_friends
    refuse = TermIndex(policy.prohibited_terms, friends)
    review = TermIndex({"": policy.review_terms}, friends)
    review_category = {
        term.text: next(
            (t.category for t in refuse.all_terms() if t.words[0][0] == term.words[0][0]), None
        )
        for term in review.all_terms()
    }
    terms = PolicyTerms(refuse, review, review_category)
    if len(_POLICY_TERMS) >= _MAX_CACHED_POLICIES:
        _POLICY_TERMS.clear()
    _POLICY_TERMS[id(policy)] = (policy, terms)
    return terms
