"""Figure helpers: stable names, frames that mark correct/incorrect results."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from semi3lib.book import figures  # noqa: E402


def test_save_figure_writes_a_stable_name_and_refuses_odd_names(tmp_path):
    fig = figures.evaluation.plot_pr_curves({"a": (np.linspace(0, 1, 5), np.linspace(1, 0.2, 5))}, chance=0.1)
    path = figures.save_figure(fig, "05_pr_curves", tmp_path)
    assert path == tmp_path / "05_pr_curves.png" and path.stat().st_size > 1000
    assert figures.save_figure(fig, "05_pr_curves", tmp_path) == path
    for bad in ("PR curves", "../x", "a.png", ""):
        with pytest.raises(ValueError):
            figures.save_figure(fig, bad, tmp_path)


def test_a_figure_that_fails_to_render_leaves_the_old_file_whole(tmp_path, monkeypatch):
    fig = figures.evaluation.plot_pr_curves({"a": (np.linspace(0, 1, 5), np.linspace(1, 0.2, 5))}, chance=0.1)
    path = figures.save_figure(fig, "05_pr_curves", tmp_path)
    before = path.read_bytes()

    def half_written(handle, **kwargs):
        handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", half_written)
    with pytest.raises(OSError):
        figures.save_figure(fig, "05_pr_curves", tmp_path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["05_pr_curves.png"]


def test_retrieval_grid_frames_correct_green_and_wrong_red():
    images = [np.full((8, 8), 255, np.uint8)] * 2
    correct = np.array([[True, False], [False, True]])
    fig = figures.evaluation.retrieval_grid(images, [images, images], correct, query_labels=["cat", "dog"])
    axes = np.array(fig.axes).reshape(2, 3)
    for i in range(2):
        for j in range(2):
            colour = mcolors.to_hex(axes[i, j + 1].spines["top"].get_edgecolor())
            assert colour == (figures.CORRECT_COLOR if correct[i, j] else figures.WRONG_COLOR)


def test_plots_accept_tensors_and_histories(tmp_path):
    import torch

    fig = figures.image_table([[torch.rand(3, 8, 8), np.zeros((8, 8), np.uint8), None]], ["a", "b", "c"], ["row"])
    assert len(fig.axes) == 3
    history = [{"epoch": 1, "loss_ce": 2.0, "loss_triplet": 0.0, "loss_total": 2.5},
               {"epoch": 2, "loss_ce": 1.0, "loss_triplet": 0.0, "loss_total": 1.5, "query": {"mAP@all": 0.3}}]
    fig = figures.training.plot_training_curves(history)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["ce", "total"]  # the switched-off triplet term is left out
    steps = [{"epoch": 1, "step": s, "lr": 1e-3, "loss_ce": 3.0 - s / 4, "loss_triplet": 0.0, "loss_total": 3.5 - s / 4}
             for s in (2, 4)]
    fig = figures.training.plot_training_curves([{**history[0], "step": 4}], steps=steps)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines if not line.get_label().startswith("_")] == ["ce", "total"]
    assert list(lines[0].get_xdata()) == [2, 4]  # per logged step, not per epoch
    rng = np.random.default_rng(0)
    panel = {"xy": rng.normal(size=(20, 2)), "category": np.arange(20) % 3, "is_sketch": np.arange(20) % 2 == 0}
    fig = figures.embeddings.plot_umap_panels({"before": panel, "after": panel}, ["a", "b", "c"])
    assert len(fig.axes) == 4
    figures.save_figure(figures.edgemaps.plot_speed({"canny": 0.001}), "speed", tmp_path)


def test_study_plot_has_a_dot_per_seed_and_a_bar_per_row_best_first():
    import pandas as pd

    runs = pd.DataFrame({"run": ["b", "b", "b", "a", "c"], "seed": [0, 1, 2, 0, 0],
                         "mAP@all": [0.4, 0.5, 0.6, 0.3, 0.7]})
    fig = figures.evaluation.plot_study(runs, reference="a")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "b", "a"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [0.7, 0.5, 0.3]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [len(line.get_xdata()) for line in dots] == [1, 3, 1]
    assert "0.500 ± 0.100" in [t.get_text().strip() for t in ax.texts]
    assert ax.get_lines()[-1].get_xdata()[0] == 0.3  # the reference row's mean
