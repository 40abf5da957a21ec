"""The validator of a rendered text against its brief.

A text passes when: it has one sentence per statement (so the count is within the asked range),
each section holds the sentences of its statements; every number of sentence *i* matches a
number of statement *i* within its rounding, and every number of statement *i* appears in it;
every ``[Rn]`` marker names a recommendation of the brief and sits in its statement's sentence;
the letters are in the asked locale's script (ru: Cyrillic, en: Latin). The complaints are
plain sentences the retry hands back to the model, with the sentences that broke them
(``Verdict.failed``: the retry rewrites only those).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trendflow.render.brief import Brief

# A number, its thousands optionally grouped by a space (Russian writes 12 400, with a normal,
# no-break or narrow no-break space), and a decimal point or comma.
_NUMBER = re.compile(r"(?<![\w.,])[-−–]?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)?"
                     r"(?![\w])")
_GROUP_SPACE = re.compile(r"[ \u00a0\u202f]")
_MARKER = re.compile(r"\[(R\d+)\]")


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[str, ...]
    ungrounded: int  # numbers that no fact of the brief holds at all
    # The sentences (1-based) that broke a rule of their own statement; every sentence when the
    # text as a whole is wrong (its sections, its count or its script).
    failed: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def numbers_in(text: str) -> list[tuple[float, int]]:
    """Every number of ``text`` as (value, decimals written); ``,`` counts as a decimal point."""
    out = []
    for match in _NUMBER.finditer(_MARKER.sub(" ", text)):
        raw = _GROUP_SPACE.sub("", match.group()).replace("−", "-").replace("–", "-")
        raw = raw.replace(",", ".")
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        out.append((float(raw), decimals))
    return out


def _matches(value: float, decimals: int, shown: str) -> bool:
    """``value`` written with ``decimals`` is ``shown`` rounded (to the coarser of the two)."""
    return abs(value - float(shown)) <= 0.5 * 10 ** -min(decimals, _decimals(shown)) + 1e-9


def _decimals(shown: str) -> int:
    return len(shown.split(".")[1]) if "." in shown else 0


def _script_ok(text: str, locale: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    cyr = sum("\u0400" <= c <= "\u04ff" for c in letters) / len(letters)
    return cyr >= 0.6 if locale == "ru" else cyr <= 0.02


def validate(brief: Brief, sections: list[tuple[str, list[str]]]) -> Verdict:
    """Check the model's ``[(section id, [sentences])]`` against ``brief``."""
    problems: list[str] = []
    expected = brief.sections()
    got_ids = [sid for sid, _ in sections]
    want_ids = [sid for sid, _ in expected]
    if got_ids != want_ids:
        problems.append(f"the sections must be {want_ids} in this order, not {got_ids}")
    flat = [s for _, sents in sections for s in sents]
    statements = brief.statements
    if len(flat) != len(statements):
        problems.append(f"write exactly {len(statements)} sentences, one per statement, "
                        f"not {len(flat)}")
    whole = bool(problems)
    all_numbers = {n for st in statements for n in st.numbers}
    recs = {r.id for r in brief.recommendations}
    ungrounded = 0
    failed: list[int] = []
    for i, (st, sentence) in enumerate(zip(statements, flat, strict=False), start=1):
        before = len(problems)
        found = numbers_in(sentence)
        for value, decimals in found:
            if not any(_matches(value, decimals, n) for n in st.numbers):
                if not any(_matches(value, decimals, n) for n in all_numbers):
                    ungrounded += 1
                problems.append(f"sentence {i} has the number {value:g}, which statement {i} "
                                f"does not hold (it holds: {', '.join(st.numbers) or 'none'})")
        for n in st.numbers:
            if not any(_matches(value, decimals, n) for value, decimals in found):
                problems.append(f"sentence {i} lost the number {n} of statement {i}")
        markers = _MARKER.findall(sentence)
        for m in markers:
            if m not in recs:
                problems.append(f"sentence {i} names [{m}], which is no recommendation")
        if st.recommendation and st.recommendation not in markers:
            problems.append(f"sentence {i} must keep the marker [{st.recommendation}]")
        if len(problems) > before:
            failed.append(i)
    for extra in flat[len(statements):]:
        ungrounded += sum(1 for v, d in numbers_in(extra)
                          if not any(_matches(v, d, n) for n in all_numbers))
    text = " ".join(flat)
    if flat and not _script_ok(text, brief.locale):
        language = "Russian (Cyrillic)" if brief.locale == "ru" else "English"
        problems.append(f"write in {language}")
        whole = True
    if whole:
        failed = list(range(1, len(statements) + 1))
    return Verdict(tuple(problems), ungrounded, tuple(failed))


__all__ = ["Verdict", "numbers_in", "validate"]
