"""The book's one comparison rule on hand-made seed tables; every expected answer is worked out
here by hand (the means, stds and signs in the comments), not by calling the rule."""

import math

import pytest

from semi3lib.study.rule import compare, mean_std, reason, score_parts, score_text, so_far, statement, verdict_word


def test_a_row_ahead_with_every_seed_and_past_the_spread_beats_the_other():
    # means 0.70 and 0.60: gap +0.10; stds 0.01 and 0.01; every seed ahead
    out = compare({0: 0.69, 1: 0.70, 2: 0.71}, {0: 0.59, 1: 0.60, 2: 0.61})
    assert out.verdict == 1 and out.ahead == 1
    assert out.gap == pytest.approx(0.10) and out.spread == pytest.approx(0.01)
    assert reason(out) == "gap +0.100, past the seed spread 0.010, ahead with every seed"
    assert verdict_word(out) == "ahead"


def test_a_gap_past_the_spread_is_level_when_one_seed_disagrees():
    # A 0.66, 0.66, 0.595 (mean 0.63833, deviations +0.02167, +0.02167, -0.04333: std 0.037528);
    # B 0.60 with every seed (std 0): gap +0.03833 is past the spread, but seed 2 is behind
    a, b = {0: 0.66, 1: 0.66, 2: 0.595}, {0: 0.60, 1: 0.60, 2: 0.60}
    out = compare(a, b)
    assert out.gap == pytest.approx(0.038333, abs=1e-6)
    assert out.spread == pytest.approx(0.037528, abs=1e-6)
    assert out.past_spread and out.ahead == 0 and out.verdict == 0
    assert verdict_word(out) == "level"
    assert reason(out).endswith("past the seed spread 0.038, ahead with some seeds, behind with others")


def test_a_row_behind_with_every_seed_but_within_the_spread_is_level():
    # gap -0.01; B's values 0.60, 0.62, 0.64 (std 0.02); A = B - 0.01 with every seed
    out = compare({0: 0.59, 1: 0.61, 2: 0.63}, {0: 0.60, 1: 0.62, 2: 0.64})
    assert out.ahead == -1 and out.verdict == 0
    assert reason(out) == "gap -0.010, within the seed spread 0.020, behind with every seed"


def test_the_mirror_comparison_has_the_opposite_verdict():
    a, b = {0: 0.50, 1: 0.52}, {0: 0.60, 1: 0.61}
    # gap -0.095; stds 0.01414 and 0.00707; behind with both seeds; two seeds: provisional
    assert compare(a, b).verdict == -1 and compare(b, a).verdict == 1
    assert verdict_word(compare(a, b)) == "behind (2 seeds so far)"
    assert reason(compare(a, b)).startswith("2 seeds so far; gap -0.095")


def test_one_seed_is_never_decided():
    out = compare({0: 0.9}, {0: 0.1, 1: 0.2, 2: 0.3})
    assert not out.decided and out.verdict == 0 and math.isnan(out.spread)
    assert verdict_word(out) == "no verdict yet"
    assert reason(out) == "gap +0.700 with one seed"  # means 0.9 and 0.2
    assert statement(out) == "no verdict yet (gap +0.700 with one seed)"


def test_rows_without_a_seed_in_common_are_never_decided():
    # spreads are known (0.01 each) and the gap +0.10 is past them, but no seed k meets seed k
    out = compare({0: 0.69, 1: 0.70, 2: 0.71}, {3: 0.59, 4: 0.60, 5: 0.61})
    assert out.paired == () and not out.decided and out.verdict == 0
    assert statement(out) == "no verdict yet (gap +0.100, no seed in common)"


def test_only_paired_seeds_decide_ahead():
    # seed 3 exists in A only and is far behind; the paired seeds 0-2 are all ahead
    out = compare({0: 0.70, 1: 0.71, 2: 0.72, 3: 0.40}, {0: 0.60, 1: 0.61, 2: 0.62})
    assert out.paired == (0, 1, 2) and out.ahead == 1
    # mean A 0.6325 gap +0.0225; std A 0.1553 -> within spread: level
    assert out.verdict == 0


def test_mean_std_and_score_text():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert math.isnan(mean_std({0: 0.5})[1])
    assert score_text(0.63149, 0.00449) == "0.631 ± 0.004"
    assert score_text(0.5, math.nan) == "0.500"
    assert score_parts(0.63149, 0.00449) == ("0.631", "± 0.004")
    assert score_parts(0.5, math.nan, digits=4) == ("0.5000", "")


def test_a_statement_is_the_pages_word_then_the_rules_numbers():
    out = compare({0: 0.69, 1: 0.70, 2: 0.71}, {0: 0.59, 1: 0.60, 2: 0.61})  # as in the first test
    assert statement(out) == "ahead (gap +0.100, past the seed spread 0.010, ahead with every seed)"
    helps = {1: "**helps**", -1: "**costs**", 0: "is **level**"}
    assert statement(out, helps, "; on two hosts") == (
        "**helps** (gap +0.100, past the seed spread 0.010, ahead with every seed; on two hosts)")
    # two seeds: the word stays bare, the numbers say how many seeds the verdict rests on
    two = compare({0: 0.50, 1: 0.52}, {0: 0.60, 1: 0.61})
    assert so_far(two) == " (2 seeds so far)" and so_far(out) == ""
    assert statement(two, helps).startswith("**costs** (2 seeds so far; gap -0.095, past the seed spread 0.014")


# ------------------------------------------------------------------------- one kind of host a pair

AMD_AVX2, AMD_AVX512, XEON = "AMD EPYC (AVX2)", "AMD EPYC (AVX512)", "Intel Xeon (AVX512)"


def test_a_pair_run_on_two_kinds_of_host_is_left_out_and_the_outcome_says_so():
    # A ahead of B by 0.10 with seeds 0 and 1 (same host each); seed 2's runs were on two kinds of
    # host and would put A behind: left out, so A rests on seeds 0, 1 only (provisional)
    a, b = {0: 0.70, 1: 0.71, 2: 0.40}, {0: 0.60, 1: 0.61, 2: 0.60}
    out = compare(a, b, hosts_a={0: AMD_AVX2, 1: AMD_AVX2, 2: AMD_AVX2}, hosts_b={0: AMD_AVX2, 1: AMD_AVX2, 2: AMD_AVX512})
    assert out.paired == (0, 1) and out.cross_host == (2,) and out.a == {0: 0.70, 1: 0.71}
    assert out.gap == pytest.approx(0.10) and out.verdict == 1  # spread 0.00707 both
    assert out.hosts == (AMD_AVX2,) and out.hosts_mixed
    assert statement(out) == ("ahead (2 seeds so far; gap +0.100, past the seed spread 0.007, ahead with every seed; "
                              "on AMD EPYC (AVX2); mixed hosts: seed 2 left out, the rows ran it on different kinds of host)")
    # without hosts the same seeds give another verdict: seed 2 is behind
    assert compare(a, b).verdict == 0


def test_pairs_on_several_kinds_of_host_are_kept_and_named_as_mixed():
    a, b = {0: 0.69, 1: 0.70, 2: 0.71}, {0: 0.59, 1: 0.60, 2: 0.61}
    hosts = {0: AMD_AVX2, 1: XEON, 2: XEON}
    out = compare(a, b, hosts_a=hosts, hosts_b=hosts)
    assert out.verdict == 1 and out.paired == (0, 1, 2) and out.cross_host == ()
    assert out.hosts == (AMD_AVX2, XEON) and out.hosts_mixed
    assert statement(out).endswith("; mixed hosts: seed 0 on AMD EPYC (AVX2), seeds 1, 2 on Intel Xeon (AVX512))")


def test_one_kind_of_host_is_named_and_not_mixed():
    hosts = dict.fromkeys(range(3), AMD_AVX512)
    out = compare({0: 0.69, 1: 0.70, 2: 0.71}, {0: 0.59, 1: 0.60, 2: 0.61}, hosts_a=hosts, hosts_b=hosts)
    assert out.hosts == (AMD_AVX512,) and not out.hosts_mixed
    assert statement(out) == "ahead (gap +0.100, past the seed spread 0.010, ahead with every seed; on AMD EPYC (AVX512))"


def test_with_hosts_every_pair_on_other_hosts_leaves_no_verdict():
    out = compare({0: 0.9, 1: 0.8}, {0: 0.1, 1: 0.2}, hosts_a={0: XEON, 1: XEON}, hosts_b={0: AMD_AVX2, 1: AMD_AVX2})
    assert not out.decided and out.verdict == 0 and out.paired == () and out.cross_host == (0, 1)
    assert statement(out) == ("no verdict yet (no seed that both rows ran on one kind of host; mixed hosts: "
                              "seeds 0, 1 left out, the rows ran them on different kinds of host)")


def test_with_hosts_a_seed_one_row_ran_alone_is_left_out_and_an_unrecorded_host_matches_only_itself():
    # seed 3 (A only) would drag A's mean down to within the spread; with hosts it is left out
    a, b = {0: 0.70, 1: 0.71, 2: 0.72, 3: 0.40}, {0: 0.60, 1: 0.61, 2: 0.62}
    out = compare(a, b, hosts_a={}, hosts_b={})  # no host recorded for any run
    assert out.unpaired == (3,) and out.verdict == 1 and out.hosts == ("an unrecorded host",)
    assert statement(out).endswith("; on an unrecorded host; seed 3 left out, run by one row only)")
    mixed = compare(a, b, hosts_a={0: XEON}, hosts_b={})
    assert mixed.cross_host == (0,) and mixed.paired == (1, 2)
