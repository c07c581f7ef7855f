"""The "Paper vs. this book" page: one row per claim of the paper, each measurement and verdict
computed from the study's records by the book's comparison rule, never typed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from semi3lib.study import claims

from semi3lib.study import reporting

REPO = Path(__file__).resolve().parents[1]


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"run": run, "seed": seed, "mAP@all": v} for run, vs in values.items() for seed, v in enumerate(vs)])


def test_a_claim_is_supported_only_when_every_comparison_beats_the_seed_spread():
    spec = [{"claim": "A helps", "paper": "abstract", "compare": [["m", "no-a"]]},
            {"claim": "B helps", "paper": "abstract", "compare": [["m", "no-b"]]},
            {"claim": "C helps", "paper": "abstract", "compare": [["m", "no-c"]]},
            {"claim": "both", "compare": [["m", "no-a"], ["m", "no-b"]]},
            {"claim": "D helps", "compare": [["m", "no-d"]]},
            {"claim": "Sketchy: {mAP@all:.3f}", "reported": 0, "untested": "no full data"}]
    runs = _runs({"m": [0.50, 0.51, 0.52], "no-a": [0.45, 0.46, 0.47], "no-b": [0.50, 0.51, 0.53],
                  "no-c": [0.60, 0.61, 0.62]})
    table = claims.paper_vs_book(runs, spec).set_index("claim")
    assert list(table["verdict"]) == [claims.SUPPORTED, claims.NOT_SUPPORTED, claims.NOT_SUPPORTED,
                                      claims.NOT_SUPPORTED, claims.UNTESTED, claims.UNTESTED]
    assert "ahead of `no-a` by 0.050" in table.at["A helps", "why"]
    assert "level with `no-b`" in table.at["B helps", "why"] and "behind `no-c` by 0.100" in table.at["C helps", "why"]
    assert table.at["D helps", "why"] == "no records of no-d"
    assert "Sketchy: 0.916" in table.index and table.at["Sketchy: 0.916", "why"] == "no full data"
    assert table.at["A helps", "this book's measurement"] == "`m` 0.510\u00a0±\u00a00.010 (3 seeds); `no-a` 0.460\u00a0±\u00a00.010 (3 seeds)"
    assert (claims.paper_vs_book(None, spec)["verdict"] == claims.UNTESTED).all()


def test_the_page_covers_every_claim_of_the_issue_with_verdicts_from_the_records():
    spec = claims.load_claims(REPO / claims.CLAIMS_FILE)
    runs, note = reporting.load_study(REPO / claims.STUDY_DIR)
    assert runs is not None, note
    table = claims.paper_vs_book(runs, spec)
    assert len(table) == 8
    verdicts = dict(zip(table["claim"], table["verdict"]))
    for claim, verdict in verdicts.items():  # each comparison is the rule applied to the records
        spec_row = next(c for c in spec if claim.startswith(c["claim"].split("{")[0]))
        if "compare" in spec_row:
            beaten = all(reporting.compare_rows(runs, a, b)["outcome"] == "above" for a, b in spec_row["compare"])
            assert verdict == (claims.SUPPORTED if beaten else claims.NOT_SUPPORTED), claim
        else:
            assert verdict == claims.UNTESTED
    assert {"Sketchy: mAP@all 0.916, P@200 0.930", "TU-Berlin Extension: mAP@all 0.800, P@200 0.813"} <= set(verdicts)
    text = claims.page_markdown(REPO)
    assert text.count("\n| ") == 9 and "efficientnet_lite0 at 128 px" in text and "`results/sketchy-mini`" in text


def test_write_page_puts_the_table_where_the_book_page_includes_it(tmp_path):
    assert claims.write_page(tmp_path) is None  # no claims file: nothing to write
    (tmp_path / "book").mkdir()
    (tmp_path / claims.CLAIMS_FILE).write_text((REPO / claims.CLAIMS_FILE).read_text())
    out = claims.write_page(tmp_path)
    assert out == tmp_path / claims.GENERATED and "untested here" in out.read_text()  # no records: untested
    page = (REPO / "book" / "paper-vs-book.md").read_text()
    assert "```{include} ../_build/generated/paper-vs-book.md" in page
