"""The README is a front page: short, its links alive, and every score in it computed from the
study's records (results/sketchy-mini), not typed."""

from __future__ import annotations

import re
from pathlib import Path

from semi3lib.book import generated
from semi3lib.book.generated.blocks import BLOCK as GENERATED
from semi3lib.study import bridge, headline
from semi3lib.study.records import load_study

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _block(name: str) -> str:
    """The body of the README's ``<!-- gen:NAME -->`` block."""
    bodies = {m["name"]: m["body"] for m in GENERATED.finditer(README.read_text())}
    assert name in bodies, f"the README has no generated block {name!r}"
    return bodies[name]


def test_readme_is_a_front_page_of_at_most_120_lines():
    text = README.read_text()
    assert len(text.splitlines()) <= 120
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:2] == ["Quick start", "Results"] or "Results" in headings
    assert "make book" in text and "make test" in text


def test_readme_headline_is_the_one_the_records_give():
    runs, note = load_study(REPO / "results" / "sketchy-mini")
    assert runs is not None, note
    expected = headline.readme_headline(runs)
    assert _block("readme-headline").strip() == expected.strip(), (
        "the README's headline differs from the records: `.venv/bin/python -m semi3lib.book.generated --write`")
    assert 5 <= len([line for line in expected.splitlines() if line.startswith("| ")]) - 1 <= 7


def test_readme_says_per_bridge_setting_what_the_records_give():
    expected = bridge.findings(bridge.load_settings(root=REPO))
    body = _block("bridge-findings")
    assert body.strip() == expected.strip(), (
        "the README's bridge findings differ from the records: `.venv/bin/python -m semi3lib.book.generated --write`")
    lines = body.strip().splitlines()
    assert lines[0].startswith("**In short:**") and sum(line.startswith("- **") for line in lines) == len(bridge.SETTINGS)


def test_bridge_lead_counts_the_seeds_of_the_three_networks():
    runs = bridge.load_settings(root=REPO)
    assert set(runs["row"]) <= set(bridge.ROLES)  # a variant row of a setting's plan is not counted
    assert f"smoothing, {bridge.seeds_each(runs)} each" in _block("readme-bridge-lead")


def test_every_score_in_the_readme_comes_from_a_generated_block():
    outside = GENERATED.sub("", README.read_text())
    assert not re.findall(r"\b0\.\d{3}\b", outside), "a score outside the generated blocks is typed by hand"


def test_no_result_is_typed_by_hand_on_any_page_a_reader_sees():
    """README.md and book/*.md: every score, percentage, count of seeds/rows/runs/records, time,
    size, speed-up and verdict word is in a generated block (or code, or the paper's numbers)."""
    typed = {page.relative_to(REPO).as_posix(): found for page in generated.guarded_pages(REPO)
             if (found := generated.hand_typed(page.read_text()))}
    assert not typed, ("results typed by hand outside the generated blocks (put them in a "
                       "`<!-- gen:NAME -->` block of semi3lib/book/generated/): " + repr(typed))


def test_the_guard_reads_the_readme_and_the_book():
    guarded = {p.relative_to(REPO).as_posix() for p in generated.guarded_pages(REPO)}
    assert {"README.md", "book/results.md", "book/intro.md", "book/reproduce.md", "book/interactive.md"} <= guarded


def test_readme_links_and_figure_exist():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#]+?)\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert "figures/05_study.png" in local and "book/results.md" in local
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, missing


def test_the_readme_counts_are_the_data_chapters():
    import json

    data = json.loads((REPO / "results" / "book" / "cpu" / "01_data.json").read_text())
    text = README.read_text()
    split = data["split"]
    assert f"{split['train']:,} training sketches" in text
    assert f"all {split['gallery']:,} photos for {split['query']:,} query" in text
    assert f"({data['categories']} Sketchy categories" in text
