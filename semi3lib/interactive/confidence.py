"""How sure an answer is: one rule for the notebook widget (here) and the book's search page
(``web/confidence.mjs``, the same rule in JavaScript; tests/test_interactive_confidence.py
runs both on the same answers and requires the same result, text included).

The similarity scores cannot say it: a doodle the model has never seen the like of still gets
scores of 0.90-0.96, as a good answer does. What can be read is whether the closest photos
agree. Among the top ``k`` hits, count the photos of each category; the leading category
(ties: the one ranked first) has ``votes``, the next ``runner_up_votes``:

- **clear**: at least 60 % of the hits are the leading category and it leads the next by at
  least 30 % of ``k`` (top 10: 6 or more, 3 or more ahead);
- **unsure**: at least 40 % and 20 % ahead (top 10: 4 or more, 2 or more ahead);
- **unknown**: otherwise: the hits are split between categories, so the drawing looks like
  nothing the model knows.

Shares are compared as integer percentages, so the two languages cannot round differently.

A fine-grained (instance) model is trained to find the one photo a sketch was drawn from; its
closest photos agreeing on a category says nothing of whether it found that photo, so its
answers claim no confidence: :func:`fine_grained_note` says how they are ranked instead (and,
for a query sketch whose own photo is known, where that photo ranked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

CLEAR_SHARE, CLEAR_LEAD = 60, 30  # per cent of k
UNSURE_SHARE, UNSURE_LEAD = 40, 20


def category_words(category: str) -> str:
    """A category id as words: ``teddy_bear`` -> ``teddy bear``."""
    return category.replace("_", " ")


@dataclass(frozen=True)
class Confidence:
    """How far the top ``k`` hits agree on one category, and the sentence that says it."""

    level: str  # "clear" | "unsure" | "unknown"
    category: str  # the leading category (an id)
    votes: int
    runner_up: str | None
    runner_up_votes: int
    k: int
    categories: int  # how many categories the k hits show

    @property
    def text(self) -> str:
        name, k = category_words(self.category), self.k
        if self.level == "clear":
            after = f" (next: {category_words(self.runner_up)}, {self.runner_up_votes})" if self.runner_up else ""
            return f"Confident: {self.votes} of the {k} closest photos are {name}{after}."
        if self.level == "unsure":
            return (f"Not sure: {self.votes} of the {k} closest photos are {name}, "
                    f"{self.runner_up_votes} are {category_words(self.runner_up or '')}.")
        return (f"This drawing looks like nothing the model knows: the {k} closest photos are split "
                f"over {self.categories} categories (at most {self.votes} of one, {name}).")

    def as_dict(self) -> dict:
        """For the widget's front end (and the parity test): every field and the text."""
        return {"level": self.level, "category": self.category, "votes": self.votes, "runner_up": self.runner_up,
                "runner_up_votes": self.runner_up_votes, "k": self.k, "categories": self.categories,
                "text": self.text}


def ranking_confidence(categories: Sequence[str]) -> Confidence | None:
    """The confidence of an answer from its hits' categories, best hit first; None for no hits."""
    if not categories:
        return None
    votes: dict[str, int] = {}
    for category in categories:  # a dict keeps first-seen order: a tie goes to the better-ranked
        votes[category] = votes.get(category, 0) + 1
    ranked = sorted(votes.items(), key=lambda item: -item[1])  # stable: ties keep first-seen order
    (leader, n1), (second, n2) = ranked[0], ranked[1] if len(ranked) > 1 else (None, 0)
    k = len(categories)
    if 100 * n1 >= CLEAR_SHARE * k and 100 * (n1 - n2) >= CLEAR_LEAD * k:
        level = "clear"
    elif 100 * n1 >= UNSURE_SHARE * k and 100 * (n1 - n2) >= UNSURE_LEAD * k:
        level = "unsure"
    else:
        level = "unknown"
    return Confidence(level, leader, n1, second, n2, k, len(votes))


FINE_GRAINED_NOTE = ("Fine-grained model: the photos are ranked by how closely they match this drawing's details "
                     "(no confidence is claimed).")


def fine_grained_note(own_rank: int | None, k: int) -> dict:
    """What a fine-grained model's answer says in place of a confidence (``level``
    ``fine-grained``, ``text``): ``own_rank`` is the 1-based rank of the sketch's own photo
    among the ``k`` hits, 0 when it is not among them, None when it is not known."""
    where = ""
    if own_rank is not None:
        where = (f" The photo this sketch was drawn from is number {own_rank}." if own_rank > 0
                 else f" The photo this sketch was drawn from is not among these {k}.")
    return {"level": "fine-grained", "text": FINE_GRAINED_NOTE + where}
