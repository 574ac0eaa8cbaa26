"""Prohibited-purpose screening: precision, recall and speed on the labelled phrase corpus.

The corpus (``tests/data/screening_corpus.csv``) holds prohibited and legitimate phrasings:
English, Spanish, misspellings, look-alike letters, zero-width characters, paraphrases and near
misses (road ice, "Rally's", "Deportes Martinez", crimes against protected places). ``\\uXXXX``
in a phrase stands for that character. A fixed rule splits it: a phrase whose SHA-256 is
divisible by 3 is in the CHECK part, never looked at while tuning; the rest is the TUNING part.

A prohibited phrase is caught when it is refused or held for review. A legitimate phrase is
wrongly stopped when it is refused, or held when it should pass; a crime against a protected
place or group should be held for review (``want`` = ``review``), not refused.

Speed: phrases per second of ``screen_text`` (uncached: a fresh policy object each round) and,
as a baseline in the same run, a plain lower-case substring screen over the same term lists.

    python benchmarks/bench_screening.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from alpr_workbench.governance.screening import screen_text
from alpr_workbench.policy import Policy, load_policy

console = Console(width=120)
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "screening_corpus.csv"
LABELS = ("prohibited", "legitimate")
WANTS = ("refuse", "review", "pass")


@dataclass(frozen=True)
class Phrase:
    """One labelled phrase of the corpus."""

    text: str
    label: str
    want: str
    kind: str

    @property
    def part(self) -> str:
        """``"check"`` or ``"tuning"``, by a fixed rule on the phrase's hash."""
        digest = int(hashlib.sha256(self.text.encode()).hexdigest(), 16)
        return "check" if digest % 3 == 0 else "tuning"


def load_corpus(path: Path = CORPUS) -> list[Phrase]:
    """Read the corpus, turning ``\\uXXXX`` escapes into their characters."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        Phrase(
            re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), r["phrase"]),
            r["label"],
            r["want"],
            r["kind"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Score:
    """Precision and recall of stopping prohibited phrases, on one part of the corpus."""

    n_prohibited: int
    n_legitimate: int
    caught: int  # prohibited, refused or held
    wrongly_stopped: int  # legitimate, refused or held when it should pass
    refused_legitimate: int  # legitimate, refused (a dead end)
    exact: int  # verdict == want

    @property
    def precision(self) -> float:
        """Caught prohibited phrases over all phrases stopped that should not have been."""
        stopped = self.caught + self.wrongly_stopped
        return self.caught / stopped if stopped else 1.0

    @property
    def recall(self) -> float:
        """Prohibited phrases caught over all prohibited phrases."""
        return self.caught / self.n_prohibited if self.n_prohibited else 1.0

    @property
    def legitimate_allowed(self) -> float:
        """Legitimate phrases given the verdict they want (pass, or review for victims)."""
        return 1 - self.wrongly_stopped / self.n_legitimate if self.n_legitimate else 1.0


def score(phrases: list[Phrase], verdict: Callable[[str], str]) -> Score:
    """Score a screen (a function from text to verdict) on ``phrases``."""
    got = [(p, verdict(p.text)) for p in phrases]
    legit = [(p, v) for p, v in got if p.label == "legitimate"]
    return Score(
        n_prohibited=sum(p.label == "prohibited" for p in phrases),
        n_legitimate=len(legit),
        caught=sum(p.label == "prohibited" and v != "pass" for p, v in got),
        wrongly_stopped=sum(v != p.want and v != "pass" for p, v in legit),
        refused_legitimate=sum(v == "refuse" for _, v in legit),
        exact=sum(v == p.want for p, v in got),
    )


def screen(policy: Policy) -> Callable[[str], str]:
    """The workbench's screen, as a text -> verdict function."""
    return lambda text: screen_text({"reason_text": text}, policy=policy).verdict


def substring_screen(policy: Policy) -> Callable[[str], str]:
    """Baseline: a plain lower-case substring search for every prohibited term."""
    terms = [t.lower().rstrip("*") for ts in policy.prohibited_terms.values() for t in ts]

    def verdict(text: str) -> str:
        low = text.lower()
        return "refuse" if any(t in low for t in terms) else "pass"

    return verdict


def phrases_per_s(phrases: list[Phrase], make: Callable[[Policy], Callable[[str], str]]) -> float:
    """Uncached throughput: a fresh policy object (so fresh caches) for the timed round."""
    policy = load_policy().model_copy()
    verdict = make(policy)
    start = time.perf_counter()
    for p in phrases:
        verdict(p.text + " ")  # a new string each round defeats the result cache
    return len(phrases) / (time.perf_counter() - start)


def main() -> None:
    """Print precision and recall on both parts, then the speed against the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    phrases = load_corpus()
    policy = load_policy()
    table = Table(title=f"Screening corpus: {len(phrases)} phrases ({CORPUS.name})")
    for col in ("screen", "part", "prohibited", "legit", "precision", "recall", "legit ok",
                "legit refused", "exact verdict"):  # fmt: skip
        table.add_column(col, justify="right")
    for name, make in (("workbench", screen), ("substring baseline", substring_screen)):
        for part in ("tuning", "check"):
            s = score([p for p in phrases if p.part == part], make(policy))
            table.add_row(
                name, part, str(s.n_prohibited), str(s.n_legitimate), f"{s.precision:.3f}",
                f"{s.recall:.3f}", f"{s.legitimate_allowed:.3f}", str(s.refused_legitimate),
                f"{s.exact / (s.n_prohibited + s.n_legitimate):.3f}",
            )  # fmt: skip
    console.print(table)
    ours = max(phrases_per_s(phrases, screen) for _ in range(args.repeats))
    base = max(phrases_per_s(phrases, substring_screen) for _ in range(args.repeats))
    console.print(
        f"speed (uncached, best of {args.repeats}): workbench {ours:,.0f} phrases/s "
        f"({1e6 / ours:.0f} µs/phrase); substring baseline {base:,.0f} phrases/s "
        f"({1e6 / base:.1f} µs/phrase)"
    )


if __name__ == "__main__":
    main()
