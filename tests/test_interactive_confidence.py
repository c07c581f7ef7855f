"""How sure an answer is: the rule of :mod:`semi3lib.interactive.confidence` (the widget) and
``web/confidence.mjs`` (the book's search page, run by node) give the same level and the same
sentence for the same answers."""

from __future__ import annotations

import json
import random
import subprocess


from semi3lib.interactive.confidence import category_words, ranking_confidence
from semi3lib.interactive.widget import WEB_DIR
from test_interactive_export import _node

# The answers to a cat outline and a stick airplane, a real sketch's, and a split one.
CAT_OUTLINE = ["blimp", "ray", "ray", "ray", "blimp", "teddy_bear", "apple", "sea_turtle", "ray", "ray"]
STICK_AIRPLANE = ["windmill"] * 9 + ["helicopter"]
REAL_SKETCH = ["cat"] * 10
SPLIT = ["ray", "blimp", "apple", "ray", "blimp", "cat", "apple", "teddy_bear", "hat", "cup"]


def test_agreeing_hits_are_clear_and_say_so_in_words():
    c = ranking_confidence(REAL_SKETCH)
    assert (c.level, c.votes, c.runner_up, c.categories) == ("clear", 10, None, 1)
    assert c.text == "Confident: 10 of the 10 closest photos are cat."
    c = ranking_confidence(STICK_AIRPLANE)
    assert c.level == "clear" and c.text == "Confident: 9 of the 10 closest photos are windmill (next: helicopter, 1)."
    assert ranking_confidence(["teddy_bear"] * 7 + ["cat"] * 3).text.endswith("are teddy bear (next: cat, 3).")


def test_a_lead_without_a_majority_is_unsure():
    c = ranking_confidence(CAT_OUTLINE)
    assert (c.level, c.category, c.votes, c.runner_up, c.runner_up_votes) == ("unsure", "ray", 5, "blimp", 2)
    assert c.text == "Not sure: 5 of the 10 closest photos are ray, 2 are blimp."
    assert ranking_confidence(["cat"] * 6 + ["dog"] * 4).level == "unsure"  # 6 of 10 but only 2 ahead


def test_split_hits_look_like_nothing_the_model_knows():
    c = ranking_confidence(SPLIT)
    assert c.level == "unknown" and c.category == "ray"  # ray, blimp and apple tie: ray ranks first
    assert c.text == ("This drawing looks like nothing the model knows: the 10 closest photos are split over "
                      "7 categories (at most 2 of one, ray).")
    assert ranking_confidence(["a"] * 4 + ["b"] * 3 + ["c"] * 3).level == "unknown"  # 4 of 10, only 1 ahead
    assert ranking_confidence([]) is None


def test_the_thresholds_are_exact_at_their_edges():
    assert ranking_confidence(["a"] * 6 + ["b"] * 3 + ["c"]).level == "clear"  # 60 %, 30 % ahead
    assert ranking_confidence(["a"] * 4 + ["b"] * 2 + list("cdef")).level == "unsure"  # 40 %, 20 % ahead
    assert ranking_confidence(["a"]).level == "clear"
    assert category_words("sea_turtle") == "sea turtle"


PROBE = """
import fs from 'node:fs';
const [mod, input] = process.argv.slice(2);
const { rankingConfidence } = await import(mod);
const cases = JSON.parse(fs.readFileSync(input, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(rankingConfidence)));
"""


def test_the_page_and_the_widget_judge_every_answer_alike(tmp_path):
    node = _node()
    rng = random.Random(0)
    names = ["cat", "teddy_bear", "ray", "blimp", "sea_turtle", "windmill"]
    cases = [REAL_SKETCH, STICK_AIRPLANE, CAT_OUTLINE, SPLIT, [], ["a"], ["a", "b"], ["b", "a", "a"]]
    cases += [[rng.choice(names[:rng.randint(1, len(names))]) for _ in range(rng.choice([1, 3, 5, 10, 20]))]
              for _ in range(300)]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "probe.mjs").write_text(PROBE)
    out = subprocess.run([node, str(tmp_path / "probe.mjs"), str(WEB_DIR / "confidence.mjs"), str(tmp_path / "cases.json")],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    python = [c.as_dict() if (c := ranking_confidence(case)) else None for case in cases]
    assert json.loads(out) == python
    assert {c["level"] for c in python if c} == {"clear", "unsure", "unknown"}  # every branch compared


NOTE_PROBE = """
import fs from 'node:fs';
const [mod, input] = process.argv.slice(2);
const { fineGrainedNote } = await import(mod);
process.stdout.write(JSON.stringify(JSON.parse(fs.readFileSync(input, 'utf8')).map(([r, k]) => fineGrainedNote(r, k))));
"""


def test_a_fine_grained_answer_claims_no_confidence_in_both_languages(tmp_path):
    from semi3lib.interactive.confidence import FINE_GRAINED_NOTE, fine_grained_note

    assert fine_grained_note(None, 10) == {"level": "fine-grained", "text": FINE_GRAINED_NOTE}
    assert "no confidence is claimed" in FINE_GRAINED_NOTE and "Confident" not in FINE_GRAINED_NOTE
    assert fine_grained_note(3, 10)["text"].endswith(" The photo this sketch was drawn from is number 3.")
    assert fine_grained_note(0, 10)["text"].endswith(" is not among these 10.")
    cases = [[None, 10], [1, 10], [3, 10], [0, 10], [0, 6]]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "probe.mjs").write_text(NOTE_PROBE)
    out = subprocess.run([_node(), str(tmp_path / "probe.mjs"), str(WEB_DIR / "confidence.mjs"), str(tmp_path / "cases.json")],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    assert json.loads(out) == [fine_grained_note(r, k) for r, k in cases]
