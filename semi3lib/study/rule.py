"""The book's one comparison rule, its outcome and the words that state it.

Two rows (networks, settings, variants) are compared on one metric from their per-seed scores,
``{seed: value}`` each. Row A **beats** row B when both hold:

- the gap of the means (A's mean minus B's) is larger than the seed spread (the larger of the
  two sample standard deviations), and
- A is ahead of B with every seed both rows ran (seed k against seed k: the seeds are paired,
  both rows saw the same split, initialisation seed and batch order).

B beats A by the mirror image; anything else is **level**.

**One kind of host per pair.** The same config and seed trains to other numbers on another kind
of CPU (another model, or the same model name with another instruction set: an "AMD EPYC" with
AVX-512 and one with AVX2), by as much as the seeds differ. So when the rows' hosts are given
(``hosts_a``, ``hosts_b``: the :func:`semi3lib.engine.hardware.host_kind` of each seed's run),
only the seeds both rows ran on the same kind of host count, for the means and spreads too; the
others are left out and the outcome names them (``cross_host``, ``unpaired``), with the hosts
the verdict rests on (``hosts``, ``hosts_mixed``), and :func:`statement` says both. A record
without an instruction set matches only records of the same CPU name without one (not a guess
that it was the same kind), and the statement says the instruction set was not recorded. A row with one seed has no known
spread, so a comparison with it is never decided. Fewer than :data:`FULL_SEEDS` seeds gives a
*provisional* verdict. Every verdict in the README, the results page, Paper vs. this book and
chapters 5 and 9 comes from :func:`compare`; every sentence that states one from
:func:`statement` (the word of a page's wording map, then :func:`reason`'s numbers), every
table cell from :func:`verdict_word`, and every ``mean ± std`` from :func:`score_parts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from semi3lib.engine.hardware import UNRECORDED_HOST

FULL_SEEDS = 3  # the studies' seeds per row; a verdict on fewer is provisional

# What the rule's verdict is called in running text, by the sign of the outcome.
BEATS = {1: "ahead", -1: "behind", 0: "level"}
NO_VERDICT = "no verdict yet"  # what a comparison the rule cannot decide says instead of a word
# Where row A stands seed by seed (the sign of `Outcome.ahead`), as reason() and tables say it.
SEED_BY_SEED = {1: "ahead with every seed", -1: "behind with every seed", 0: "ahead with some seeds, behind with others"}


def mean_std(values: Mapping[int, float] | list[float]) -> tuple[float, float]:
    """Mean and sample std (``ddof=1``) of a row's per-seed scores; the std of one seed is
    unknown (NaN), not zero."""
    xs = [float(v) for v in (values.values() if isinstance(values, Mapping) else values)]
    if not xs:
        return math.nan, math.nan
    mean = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


@dataclass(frozen=True)
class Outcome:
    """Row A against row B by the rule.

    ``gap``: A's mean minus B's; ``spread``: the larger sample std (NaN when a row has one
    seed); ``paired``: the seeds both rows ran; ``ahead``: +1 when A is ahead with every
    paired seed, -1 when behind with every one, 0 otherwise; ``verdict``: +1 A beats B, -1 B
    beats A, 0 level. With hosts given: ``host_of`` the kind of host of each pair the verdict
    rests on (``a`` and ``b`` hold those seeds only), ``cross_host`` the seeds both rows ran on
    different kinds of host and ``unpaired`` the seeds one row ran alone, both left out."""

    a: Mapping[int, float]
    b: Mapping[int, float]
    metric: str
    gap: float
    spread: float
    paired: tuple[int, ...]
    ahead: int
    verdict: int
    host_of: Mapping[int, str] = field(default_factory=dict)
    cross_host: tuple[int, ...] = ()
    unpaired: tuple[int, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """The kinds of host the verdict rests on (empty when the rows' hosts were not given)."""
        return tuple(sorted(set(self.host_of.values())))

    @property
    def hosts_mixed(self) -> bool:
        """Whether the rows' seeds ran on more than one kind of host: the pairs used ran on
        several, or some pair was left out because its two runs ran on different ones."""
        return len(self.hosts) > 1 or bool(self.cross_host)

    @property
    def seeds(self) -> int:
        """The fewer of the two rows' seed counts."""
        return min(len(self.a), len(self.b))

    @property
    def decided(self) -> bool:
        """Whether the rule could say anything: both rows have a spread and share a seed."""
        return not math.isnan(self.spread) and bool(self.paired)

    @property
    def provisional(self) -> bool:
        return self.seeds < FULL_SEEDS

    @property
    def past_spread(self) -> bool:
        return self.decided and abs(self.gap) > self.spread

    @property
    def mean_std_a(self) -> tuple[float, float]:
        return mean_std(self.a)

    @property
    def mean_std_b(self) -> tuple[float, float]:
        return mean_std(self.b)


def compare(a: Mapping[int, float], b: Mapping[int, float], metric: str = "mAP@all",
            hosts_a: Mapping[int, str | None] | None = None, hosts_b: Mapping[int, str | None] | None = None
            ) -> Outcome:
    """Row A (``{seed: score}``) against row B by the book's rule (see the module's text);
    with ``hosts_a`` and ``hosts_b`` (``{seed: kind of host}``; a seed left out or None is
    an unrecorded host) only seed pairs run on one kind of host count."""
    if not a or not b:
        raise ValueError("compare needs at least one seed in each row")
    host_of: dict[int, str] = {}
    cross_host: tuple[int, ...] = ()
    unpaired: tuple[int, ...] = ()
    if hosts_a is not None or hosts_b is not None:
        def host(hosts: Mapping[int, str | None] | None, seed: int) -> str:
            return (hosts or {}).get(seed) or UNRECORDED_HOST

        both = sorted(set(a) & set(b))
        cross_host = tuple(s for s in both if host(hosts_a, s) != host(hosts_b, s))
        unpaired = tuple(sorted(set(a) ^ set(b)))
        host_of = {s: host(hosts_a, s) for s in both if s not in cross_host}
        a, b = {s: a[s] for s in host_of}, {s: b[s] for s in host_of}
        if not host_of:
            return Outcome(dict(a), dict(b), metric, math.nan, math.nan, (), 0, 0, host_of, cross_host, unpaired)
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    gap = mean_a - mean_b
    spread = max(std_a, std_b) if not (math.isnan(std_a) or math.isnan(std_b)) else math.nan
    paired = tuple(sorted(set(a) & set(b)))
    signs = {(a[s] > b[s]) - (a[s] < b[s]) for s in paired}
    ahead = signs.pop() if len(signs) == 1 else 0
    verdict = 0
    if not math.isnan(spread) and paired and abs(gap) > spread and ahead == (gap > 0) - (gap < 0):
        verdict = ahead
    return Outcome(dict(a), dict(b), metric, gap, spread, paired, ahead, verdict, host_of, cross_host, unpaired)


def score_parts(mean: float, std: float, digits: int = 3) -> tuple[str, str]:
    """``("0.631", "± 0.005")``: a score and its seed spread as text, apart (the site's tables set
    the spread smaller); one seed (NaN std) has no spread, ``""``."""
    return f"{mean:.{digits}f}", "" if math.isnan(std) else f"± {std:.{digits}f}"


def score_text(mean: float, std: float, digits: int = 3) -> str:
    """``0.631 ± 0.005``; one seed (NaN std) shows the mean alone."""
    return " ".join(part for part in score_parts(mean, std, digits) if part)


def reason(outcome: Outcome) -> str:
    """The numbers the rule looked at, in its words, e.g. ``gap -0.045, past the seed spread
    0.005, behind with every seed``; a provisional outcome says how many seeds it rests on, an
    undecided one why (``gap +0.100 with one seed``)."""
    if not outcome.a:  # hosts given, and no seed pair ran on one kind of host
        return "no seed that both rows ran on one kind of host"
    if math.isnan(outcome.spread):
        return f"gap {outcome.gap:+.3f} with one seed"
    if not outcome.paired:
        return f"gap {outcome.gap:+.3f}, no seed in common"
    where = "past" if outcome.past_spread else "within"
    so_far = f"{outcome.seeds} seeds so far; " if outcome.provisional else ""
    return f"{so_far}gap {outcome.gap:+.3f}, {where} the seed spread {outcome.spread:.3f}, {SEED_BY_SEED[outcome.ahead]}"


def _seeds_text(seeds: tuple[int, ...] | list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def hosts_text(outcome: Outcome) -> str:
    """Where the verdict's seed pairs ran and which seeds were left out, e.g. ``on AMD EPYC
    (AVX2)``, or ``on AMD EPYC (instruction set not recorded); mixed hosts: seeds 1, 2 left
    out, the rows ran them on different kinds of host``; ``""`` when the rows' hosts were not
    given."""
    if not outcome.host_of and not outcome.cross_host and not outcome.unpaired:
        return ""
    parts = []
    if len(outcome.hosts) == 1:
        parts.append(f"on {outcome.hosts[0]}")
    elif outcome.hosts:
        by_host = {h: [s for s, k in sorted(outcome.host_of.items()) if k == h] for h in outcome.hosts}
        parts.append("mixed hosts: " + ", ".join(f"{_seeds_text(seeds)} on {h}" for h, seeds in by_host.items()))
    if outcome.cross_host:
        mixed = "" if len(outcome.hosts) > 1 else "mixed hosts: "
        one = len(outcome.cross_host) == 1
        parts.append(f"{mixed}{_seeds_text(outcome.cross_host)} left out, the rows ran {'it' if one else 'them'} "
                     "on different kinds of host")
    if outcome.unpaired:
        parts.append(f"{_seeds_text(outcome.unpaired)} left out, run by one row only")
    return "; ".join(parts)


def verdict_word(outcome: Outcome, words: Mapping[int, str] = BEATS) -> str:
    """The verdict in ``words`` (by sign), marked provisional below :data:`FULL_SEEDS` seeds;
    ``no verdict yet`` when the rule cannot decide. The word of a table cell."""
    if not outcome.decided:
        return NO_VERDICT
    return words[outcome.verdict] + so_far(outcome)


def so_far(outcome: Outcome) -> str:
    """`` (2 seeds so far)`` for a provisional outcome, ``""`` otherwise: the mark a verdict
    on fewer than :data:`FULL_SEEDS` seeds carries wherever it is named."""
    return f" ({outcome.seeds} seeds so far)" if outcome.provisional else ""


def statement(outcome: Outcome, words: Mapping[int, str] = BEATS, note: str = "", mark: str = "") -> str:
    """The verdict in ``words`` with the numbers behind it, the one way a sentence states it:
    ``behind (gap -0.030, past the seed spread 0.007, behind with every seed)``, or
    ``no verdict yet (gap +0.100 with one seed)``. ``note`` is added inside the brackets (a
    page's remark on the comparison, e.g. where the rows ran); ``mark`` goes either side of the
    word (``**`` for bold Markdown). An outcome with hosts names them (:func:`hosts_text`)."""
    word = words[outcome.verdict] if outcome.decided else NO_VERDICT
    where = hosts_text(outcome)
    return f"{mark}{word}{mark} ({reason(outcome)}{'; ' + where if where else ''}{note})"
