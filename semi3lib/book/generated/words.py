"""How the generated prose says things: the reproduction target, row names, verdict words, scores."""

from __future__ import annotations

from typing import Mapping, Sequence

from semi3lib.study.rule import Outcome, mean_std, score_text, statement

TARGET = 0.58  # issue 7's first target for Semi3-Net's mAP@all on sketchy-mini's queries
METRIC = "mAP@all"

# The rule's verdict (+1 A beats B, -1 B beats A, 0 level) in the words of each kind of sentence.
VERSUS = {1: "ahead", -1: "behind", 0: "level"}  # row A against row B
PART = {1: "helps", -1: "costs", 0: "is level"}  # A = the network with a part, B = without it

ROW_NAMES = {
    "imagenet-features": "the ImageNet features",
    "frozen-backbone-ce-head": "the frozen ImageNet backbone with a cross-entropy head",
    "two-branch-triplet": "the two-branch network trained by the batch-hard triplet loss alone",
    "two-branch-ce": "the two-branch cross-entropy network",
    "semi3net": "Semi3-Net",
    "shared-bottoms": "one bottom for all three branches",
    "separate-bottoms": "three separate bottoms",
    "no-coattention": "Semi3-Net without co-attention",
    "no-alignment-loss": "Semi3-Net without the alignment loss",
    "no-contrastive-loss": "Semi3-Net without the contrastive loss",
    "no-edgemap-branch": "Semi3-Net without the edgemap branch",
    "edgemaps-sobel": "Semi3-Net with Sobel edgemaps",
    "edgemaps-xdog": "Semi3-Net with XDoG edgemaps",
    "semi3net-label-smoothing": "Semi3-Net with label smoothing",
    "two-branch-ce-label-smoothing": "the two-branch cross-entropy network with label smoothing",
    "no-edgemap-branch-label-smoothing": "Semi3-Net without the edgemap branch, with label smoothing",
}





def scores(by_seed: Mapping[int, float]) -> str:
    """``0.582 ± 0.007 (0.590, 0.577, 0.579)``: mean ± std, then each seed's score."""
    mean, std = mean_std(by_seed)
    if len(by_seed) == 1:
        return score_text(mean, std)
    return f"{score_text(mean, std)} ({', '.join(f'{by_seed[s]:.3f}' for s in sorted(by_seed))})"


def mean_text(by_seed: Mapping[int, float]) -> str:
    return score_text(*mean_std(by_seed))


def judged(outcome: Outcome, words: Mapping[int, str] = VERSUS) -> str:
    """``**behind** (gap -0.007, within the seed spread 0.010, ...)``: the verdict and its reason."""
    return statement(outcome, words, mark="**")


def spelled(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}.get(n, f"{n:,}")


def listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
