"""The instance-level (fine-grained) protocol: own-photo metrics against a brute-force loop, the
instance loss against a hand computation, batches with several photos per category, the
own-photo edgemap, the photo split, and the overlap of two datasets' photos (with the check
that refuses a ``train.init_from`` checkpoint trained on the run's test photos)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from data_fixtures import make_instance_dataset
from semi3lib.config import ConfigError, ExperimentConfig, LossConfig, load_config
from semi3lib.data.datasets import GalleryPhotos, InstanceTriplets
from semi3lib.data.experiment import ExperimentData, exclude_overlap, load_experiment_data
from semi3lib.data.instance import (
    InstanceBatchSampler,
    exclude_photos,
    overlap_photo_ids,
    own_photo_positions,
    photo_ids,
    photo_key,
)
from semi3lib.data.layouts import DatasetLayoutError, read_dataset
from semi3lib.data.splits import load_split, make_split, save_split, with_instance_gallery
from semi3lib.engine.metrics import instance_metrics, instance_metrics_from_embeddings, own_photo_ranks
from semi3lib.models.losses import COMPONENTS, INSTANCE_COMPONENTS, HybridLoss, TripletLoss

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- metrics


def _brute_force(sim: np.ndarray, own: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """The definition, one query and one gallery item at a time: the own photo's rank is 1 plus
    the other items scoring at least as high (ties count against the model)."""
    ranks = []
    for q in range(sim.shape[0]):
        if own[q] < 0:
            continue
        rank = 1
        for g in range(sim.shape[1]):
            if g != own[q] and sim[q, g] >= sim[q, own[q]]:
                rank += 1
        ranks.append(rank)
    out = {f"acc@{k}": sum(r <= k for r in ranks) / len(ranks) if ranks else 0.0 for k in ks}
    out["mean rank"] = sum(ranks) / len(ranks) if ranks else math.nan
    out["median rank"] = float(np.median(ranks)) if ranks else math.nan
    out["queries_without_own_photo"] = float(sum(o < 0 for o in own))
    return out


@st.composite
def _scores_and_owners(draw, tie_heavy: bool):
    q, g = draw(st.integers(1, 8)), draw(st.integers(1, 14))
    values = st.sampled_from([0.0, 0.5, 1.0]) if tie_heavy else st.floats(-1, 1, width=32)
    sim = draw(hnp.arrays(np.float32, (q, g), elements=values))
    own = draw(hnp.arrays(np.int64, (q,), elements=st.integers(-1, g - 1)))
    return sim, own


def _check_against_loop(sim: np.ndarray, own: np.ndarray) -> None:
    got, expected = instance_metrics(sim, own), _brute_force(sim, own)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value), key
    assert got["queries"] == float(np.sum(own >= 0)) and got["gallery"] == float(sim.shape[1])


@settings(max_examples=150, deadline=None)
@given(_scores_and_owners(tie_heavy=False))
def test_instance_metrics_match_a_loop_on_random_scores(case):
    _check_against_loop(*case)


@settings(max_examples=150, deadline=None)
@given(_scores_and_owners(tie_heavy=True))
def test_instance_metrics_match_a_loop_on_tie_heavy_scores(case):
    _check_against_loop(*case)


def test_ties_count_against_the_model():
    """A constant score ranks every own photo last: a model that tells nothing apart scores 0."""
    sim = np.ones((3, 5), dtype=np.float32)
    assert own_photo_ranks(sim, [0, 2, 4]).tolist() == [5, 5, 5]
    metrics = instance_metrics(sim, [0, 2, 4])
    assert metrics["acc@1"] == 0.0 and metrics["acc@5"] == 1.0 and metrics["median rank"] == 5.0


def test_instance_metrics_from_embeddings_chunked_equal_the_matrix():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(23, 6)).astype(np.float32), rng.normal(size=(17, 6)).astype(np.float32)
    own = rng.integers(0, 17, size=23)
    whole = instance_metrics(q @ g.T, own)
    assert instance_metrics_from_embeddings(q, g, own, chunk_size=5) == pytest.approx(whole)


def test_own_photo_column_past_the_gallery_is_refused():
    with pytest.raises(ValueError, match="past the gallery"):
        own_photo_ranks(np.zeros((1, 3)), [3])


# --------------------------------------------------------------------------- the loss


def test_instance_triplet_equals_a_hand_computation():
    """Two sketches, three photos on a unit circle; sketch 0's own photo is photo 0, sketch 1's
    is photo 1. Distances between unit vectors at angle a: 2 sin(a / 2)."""
    angle = lambda deg: torch.tensor([[math.cos(math.radians(deg)), math.sin(math.radians(deg))]])
    sketch = torch.cat([angle(0), angle(90)])
    photo = torch.cat([angle(30), angle(100), angle(60)])
    photo_index = torch.tensor([7, 8])  # the batch's items: sketch i with its own photo i
    chord = lambda deg: 2 * math.sin(math.radians(deg) / 2)
    # sketch 0: own photo at 30 deg, closest other photo: 60 deg (item 2 has photo 9) -> 0 + margin
    # sketch 1: own photo at 10 deg, closest other photo: 60 deg at 30 deg -> hinge 0
    margin = 0.5
    expected = (max(0.0, chord(30) - chord(60) + margin) + max(0.0, chord(10) - chord(30) + margin)) / 2
    loss = TripletLoss(margin)(sketch, photo_index, photo, torch.tensor([7, 8, 9]))
    assert loss.item() == pytest.approx(expected, abs=1e-6)

    # in HybridLoss: the instance terms (sketch -> photos and sketch -> edgemaps) weighted by instance_weight
    out = {"sketch_embed": sketch, "photo_embed": photo[:2], "edge_embed": photo[[1, 0]]}
    batch = {"sketch_label": torch.tensor([0, 0]), "photo_label": torch.tensor([0, 0]), "same": torch.ones(2),
             "photo_index": photo_index}
    cfg = LossConfig(ce_weight=0, alignment_weight=0, contrastive_weight=0, instance_weight=2.0, instance_margin=margin)
    total, parts = HybridLoss(cfg)(out, batch)
    own_photo = (max(0.0, chord(30) - chord(100) + margin) + max(0.0, chord(10) - chord(60) + margin)) / 2
    own_edge = (max(0.0, chord(100) - chord(30) + margin) + max(0.0, chord(60) - chord(10) + margin)) / 2
    assert parts["instance"].item() == pytest.approx(own_photo, abs=1e-6)
    assert parts["instance_edge"].item() == pytest.approx(own_edge, abs=1e-6)
    assert total.item() == pytest.approx(2.0 * (own_photo + own_edge), abs=1e-6)
    assert set(parts) == set(COMPONENTS) | set(INSTANCE_COMPONENTS)


def test_category_batches_log_no_instance_terms():
    out = {"sketch_embed": torch.randn(4, 3), "photo_embed": torch.randn(4, 3)}
    batch = {"sketch_label": torch.tensor([0, 1, 0, 1]), "photo_label": torch.tensor([0, 1, 1, 0])}
    _, parts = HybridLoss(LossConfig(ce_weight=0, triplet_weight=1.0))(out, batch)
    assert set(parts) == set(COMPONENTS)


# --------------------------------------------------------------------------- batches


def test_every_batch_has_several_photos_of_each_of_its_categories():
    photos = [p for p in range(40) for _ in range(3)]  # 40 photos, 3 sketches each
    categories = [f"c{p % 5}" for p in photos]  # 5 categories of 8 photos
    sampler = InstanceBatchSampler(photos, categories, batch_size=12, photos_per_category=4, seed=3)
    batches = list(sampler)
    assert len(batches) == len(photos) // 12
    for batch in batches:
        assert len(batch) == 12
        per_category = Counter(categories[i] for i in batch)
        assert len(per_category) == 3 and set(per_category.values()) == {4}
        assert len({photos[i] for i in batch}) == 12  # distinct photos: every other one is a negative
    assert list(InstanceBatchSampler(photos, categories, 12, 4, seed=3)) == batches  # seeded
    sampler.set_epoch(1)
    assert list(sampler) != batches
    shards = [list(InstanceBatchSampler(photos, categories, 12, 4, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*shards)] == batches  # DDP shards make up the global batch


def test_sampler_refuses_batches_it_cannot_fill():
    photos, categories = list(range(6)), ["a"] * 3 + ["b"] * 3
    with pytest.raises(ValueError, match="multiple"):
        InstanceBatchSampler(photos, categories, batch_size=6, photos_per_category=4, seed=0)
    with pytest.raises(ValueError, match="categories with 4\\+"):
        InstanceBatchSampler(photos, categories, batch_size=4, photos_per_category=4, seed=0)


# --------------------------------------------------------------------------- the data


@pytest.fixture
def fg(tmp_path) -> Path:
    return make_instance_dataset(tmp_path / "data" / "sketchy-fg10")


def test_split_follows_the_dataset_photo_split(fg):
    index = read_dataset("sketchy-fg10", root=fg)
    split = make_split(index, "instance")
    assert split.photo_split == "split.json"
    test_keys = {photo_key(index, j) for j in split.test_photos}
    assert test_keys == {f"{c}/{c}_{p}" for c in ("apple", "cup", "shoe") for p in (4, 5)}
    assert split.gallery == split.test_photos and len(split.train_photos) == 12
    # a sketch follows its photo: queries are the test photos' sketches, training the others'
    own_query = own_photo_positions(index, split.query)
    own_train = own_photo_positions(index, split.train_sketches)
    assert set(own_query.tolist()) == set(split.test_photos) and len(split.query) == 12
    assert set(own_train.tolist()) == set(split.train_photos) and len(split.train_sketches) == 24
    harder = with_instance_gallery(split, "all")
    assert harder.gallery == list(range(18)) and harder.query == split.query


def test_split_survives_a_split_file(fg, tmp_path):
    index = read_dataset("sketchy-fg10", root=fg)
    split = make_split(index, "instance")
    assert load_split(save_split(split, tmp_path / "split.json"), index) == split


def test_seeded_photo_split_without_a_split_file(tmp_path):
    root = make_instance_dataset(tmp_path / "fg", photos_per_category=10, test_per_category=None)
    index = read_dataset("sketchy-fg10", root=root)
    split = make_split(index, "instance", seed=4)
    assert split.photo_split == "seeded"
    assert Counter(index.photos[j].category for j in split.test_photos) == {"apple": 2, "cup": 2, "shoe": 2}
    assert make_split(index, "instance", seed=4) == split and make_split(index, "instance", seed=5) != split


def test_a_photo_split_that_misses_photos_is_refused(fg):
    (fg / "split.json").write_text('{"train": ["apple/apple_0"], "test": []}')
    with pytest.raises(DatasetLayoutError, match="neither side"):
        make_split(read_dataset("sketchy-fg10", root=fg), "instance")


def test_the_edgemap_paired_with_a_sketch_is_its_own_photos(fg, tmp_path):
    index = read_dataset("sketchy-fg10", root=fg)
    split = make_split(index, "instance")
    items = InstanceTriplets(index, split, image_size=32, hflip=False, cache_dir=tmp_path / "edges")
    gallery = GalleryPhotos(index, list(range(len(index.photos))), image_size=32, cache_dir=tmp_path / "edges")
    for i in (0, 5, len(items) - 1):
        item = items[i]
        k = split.train_sketches[i]
        own = int(own_photo_positions(index, [k])[0])
        assert int(item["photo_index"]) == own and float(item["same"]) == 1.0
        assert Path(index.photos[own].path).stem == index.sketches[k].photo_id
        reference = gallery[own]
        assert torch.equal(item["edge"], reference["edge"]) and torch.equal(item["photo"], reference["photo"])
        assert int(item["sketch_label"]) == int(item["photo_label"]) == int(reference["label"])


def test_instance_items_take_the_stroke_and_doodle_settings_of_category_items(fg, tmp_path):
    index = read_dataset("sketchy-fg10", root=fg)
    split = make_split(index, "instance")
    def item(**kw):
        return InstanceTriplets(index, split, image_size=32, cache_dir=tmp_path / "edges", seed=1, **kw)[3]
    raw, again = item(), item()
    assert all(torch.equal(raw[f], again[f]) for f in raw)  # deterministic in (seed, epoch, i)
    for changed in (item(strokes="normalised"), item(doodle_augment=1.0)):
        assert not torch.equal(changed["sketch"], raw["sketch"])
        assert all(torch.equal(changed[f], raw[f]) for f in raw if f != "sketch")  # the photo side is untouched


# --------------------------------------------------------------------------- overlap of datasets


@pytest.fixture
def two_datasets(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A "sketchy-fg10" with photos 0-5 of each category (4, 5 test) and a "sketchy-mini"
    holding photos 3-8: they share 3, 4 and 5 (two of them test photos of the first)."""
    data = tmp_path / "data"
    fg = make_instance_dataset(data / "sketchy-fg10")
    mini = make_instance_dataset(data / "sketchy-mini", first_photo=3, test_per_category=None)
    monkeypatch.setenv("SEMI3_DATA", str(data))
    return fg, mini


def test_overlap_lists_the_shared_photos_by_id(two_datasets):
    fg, mini = (read_dataset(name) for name in ("sketchy-fg10", "sketchy-mini"))
    assert overlap_photo_ids(fg, mini) == sorted(f"{c}/{c}_{p}" for c in ("apple", "cup", "shoe") for p in (3, 4, 5))
    kept = exclude_photos(mini, set(overlap_photo_ids(fg, mini)))
    assert not photo_ids(kept) & photo_ids(fg) and len(kept.photos) == 9
    assert all(s.photo_id not in {"apple_3", "cup_4"} for s in kept.sketches) and len(kept.sketches) == 18


def test_exclude_overlap_with_leaves_the_other_datasets_photos_out(two_datasets):
    cfg = load_config(None, ["data.dataset=sketchy-mini", "data.exclude_overlap_with=sketchy-fg10"])
    index = exclude_overlap(read_dataset("sketchy-mini"), cfg.data)
    assert not photo_ids(index) & photo_ids(read_dataset("sketchy-fg10"))


def _init_checkpoint(folder: Path, overrides: list[str]) -> Path:
    """A category-level "checkpoint" of sketchy-mini (its config; weights do not matter here)."""
    cfg = load_config(None, ["data.dataset=sketchy-mini", "data.queries_per_category=1", *overrides])
    path = folder / "last.pt"
    folder.mkdir(parents=True)
    torch.save({"model": {"w": torch.zeros(1)}, "config": cfg.to_dict(), "num_classes": 3}, path)
    return path


def test_init_from_a_checkpoint_trained_on_the_test_photos_is_refused(two_datasets, tmp_path):
    from semi3lib.engine.prechecks import check_init_from, init_overlap

    fg_cfg = load_config(None, ["data.dataset=sketchy-fg10", "data.protocol=instance"])
    data = load_experiment_data(fg_cfg.data)
    leaky = _init_checkpoint(tmp_path / "leaky", [])
    run = dataclasses.replace(fg_cfg, train=dataclasses.replace(fg_cfg.train, init_from=str(leaky)))
    expected = {f"{c}/{c}_{p}" for c in ("apple", "cup", "shoe") for p in (4, 5)}  # shared *and* test
    assert init_overlap(torch.load(leaky, weights_only=True)["config"], leaky.parent / "split.json", data) == expected
    with pytest.raises(ConfigError, match="trained on 6 of this run's test photos"):
        check_init_from(run, data)
    allowed = dataclasses.replace(run, train=dataclasses.replace(run.train, init_allow_overlap=True))
    # warned about, then (these stand-in weights fit no network) refused for its weights alone
    with pytest.warns(RuntimeWarning, match="test photos"), pytest.raises(ConfigError, match="same network"):
        check_init_from(allowed, data)
    clean = _init_checkpoint(tmp_path / "clean", ["data.exclude_overlap_with=sketchy-fg10"])
    assert init_overlap(torch.load(clean, weights_only=True)["config"], clean.parent / "split.json", data) == set()
    with pytest.raises(ConfigError, match="same network"):  # no leak: only the weights are left to refuse
        check_init_from(dataclasses.replace(run, train=dataclasses.replace(run.train, init_from=str(clean))), data)


def test_init_overlap_reads_the_checkpoints_own_split_file(two_datasets, tmp_path):
    """A split file beside the checkpoint says what it trained on: one without the shared
    photos passes, whatever the config would draw."""
    from semi3lib.engine.prechecks import init_overlap

    data = load_experiment_data(load_config(None, ["data.dataset=sketchy-fg10", "data.protocol=instance"]).data)
    path = _init_checkpoint(tmp_path / "run", [])
    init = load_experiment_data(load_config(None, ["data.dataset=sketchy-mini", "data.queries_per_category=1"]).data)
    shared = set(overlap_photo_ids(init.index, data.index))
    keep_photos = [j for j in init.split.train_photos if photo_key(init.index, j) not in shared]
    keep_sketches = [k for k in init.split.train_sketches
                     if f"{init.index.sketches[k].category}/{init.index.sketches[k].photo_id}" not in shared]
    save_split(dataclasses.replace(init.split, train_photos=keep_photos, train_sketches=keep_sketches),
               path.parent / "split.json")
    assert init_overlap(torch.load(path, weights_only=True)["config"], path.parent / "split.json", data) == set()


def test_initial_weights_load_all_but_a_classifier_of_other_categories(tmp_path):
    from semi3lib.engine.checkpoints import CheckpointError, load_initial_weights

    def net(classes: int) -> torch.nn.Module:
        return torch.nn.ModuleDict({"body": torch.nn.Linear(3, 4), "classifier": torch.nn.Linear(4, classes)})

    source = net(5)
    path = tmp_path / "init.pt"
    torch.save({"model": source.state_dict(), "config": ExperimentConfig().to_dict(), "num_classes": 5,
                "categories": list("abcde")}, path)
    target = net(3)
    report = load_initial_weights(target, path, categories=["a", "b", "c"])
    assert torch.equal(target["body"].weight, source["body"].weight)
    assert report["kept_fresh"] == ["classifier.bias", "classifier.weight"]
    same = net(5)
    load_initial_weights(same, path, categories=list("abcde"))
    assert torch.equal(same["classifier"].weight, source["classifier"].weight)
    with pytest.raises(CheckpointError, match="same network"):
        load_initial_weights(torch.nn.ModuleDict({"body": torch.nn.Linear(3, 7)}), path)


@pytest.mark.usefixtures("sketchy_mini_root")
def test_sketchy_fg10_shares_250_photos_with_sketchy_mini():
    """The real datasets, as sketchy-fg10's README says: 250 shared photos, 46 of them test photos."""
    from semi3lib.paths import DatasetNotFoundError

    try:
        fg = read_dataset("sketchy-fg10")
    except DatasetNotFoundError as err:
        pytest.skip(str(err))
    shared = overlap_photo_ids(fg, read_dataset("sketchy-mini"))
    split = make_split(fg, "instance")
    assert len(shared) == 250 and split.counts()["query"] == 1157 and split.counts()["train"] == 4584
    assert len(set(shared) & {photo_key(fg, j) for j in split.test_photos}) == 46


# --------------------------------------------------------------------------- training end to end

# The rows of configs/fine-grained.yaml that train, as tiny runs.
ROWS = {
    "semi3net": [],
    "no-edgemap-branch": ["model.edge_branch=false"],
    "two-branch": ["model.edge_branch=false", "model.sharing=separate", "model.split_stage=9",
                   "loss.alignment_weight=0", "loss.contrastive_weight=0"],
}


@pytest.fixture(scope="module")
def instance_run(tmp_path_factory):
    """Tiny instance-level trainings (random weights, 32 px, 2 steps of 2 categories x 2 photos)
    on a fixture dataset, one per trained row of the plan: ``{row: (config, TrainResult)}``."""
    from semi3lib.engine.train import train

    base = tmp_path_factory.mktemp("instance")
    root = make_instance_dataset(base / "sketchy-fg10")
    runs = {}
    for row, overrides in ROWS.items():
        cfg = load_config(REPO / "configs" / "fine-grained-cpu.yaml", [
            f"data.root={root}", f"data.cache_dir={base / 'edges'}", "data.image_size=32", "data.num_workers=0",
            "model.pretrained=false", "model.embed_dim=16", "model.hidden_dim=32", "train.epochs=1",
            "train.batch_size=4", "train.instance_photos_per_category=2", "train.max_steps_per_epoch=2",
            "train.device=cpu", f"train.out_dir={base / row}", *overrides])
        runs[row] = (cfg, train(cfg, progress=False))
    return runs


@pytest.mark.parametrize("row", ROWS)
def test_each_row_trains_on_instances_and_is_scored_by_its_own_photos(instance_run, row):
    cfg, result = instance_run[row]
    metrics = result.final_metrics
    assert {"acc@1", "acc@5", "acc@10", "mean rank", "median rank", "mAP@all"} <= set(metrics)
    assert metrics["queries"] == 12 and metrics["gallery"] == 6 and metrics["queries_without_own_photo"] == 0
    assert 1 <= metrics["median rank"] <= 6 and metrics["acc@10"] == 1.0  # 6 photos: the own one is in the top 10
    losses = {k for k, v in result.history[-1].items() if k.startswith("loss_") and v}
    assert "loss_instance" in losses and ("loss_instance_edge" in losses) == (row == "semi3net")
    assert (result.out_dir / "best.pt").is_file()


def test_a_trained_instance_checkpoint_scores_against_every_photo(instance_run):
    """What `semi3 eval --checkpoint ... data.instance_gallery=all` does: the run's split
    (split.json beside the checkpoint), its gallery widened to all 18 photos."""
    from semi3lib.engine.evaluate import evaluate_model, load_model

    cfg, result = instance_run["semi3net"]
    model, saved, _ = load_model(result.out_dir / "last.pt")
    data_cfg = dataclasses.replace(saved.data, instance_gallery="all")
    data = load_experiment_data(data_cfg, result.out_dir / "split.json")
    metrics = evaluate_model(model, data, data_cfg)
    assert metrics["gallery"] == 18 and metrics["queries"] == 12
    assert metrics["mean rank"] >= result.final_metrics["mean rank"]  # more photos can only rank ahead


def test_eval_index_and_search_take_a_fine_grained_checkpoint(instance_run, tmp_path, capsys):
    """`semi3 eval --json` prints acc@K and each query's rank; `semi3 index` / `semi3 search`
    rank the test photos for a test sketch, its own photo among them."""
    import json

    from semi3lib.cli import main

    _, result = instance_run["semi3net"]
    checkpoint = str(result.out_dir / "last.pt")
    assert main(["eval", "--checkpoint", checkpoint, "--json", "--quiet", "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"acc@1", "acc@5", "acc@10", "mean rank", "median rank"} <= set(metrics)
    assert len(metrics["own photo ranks"]) == metrics["queries"] == 12
    root = Path(load_config(result.out_dir / "config.yaml").data.root)
    split = json.loads((root / "split.json").read_text())
    test_photos = tmp_path / "photos"
    for key in split["test"]:
        category, stem = key.split("/")
        (test_photos / category).mkdir(parents=True, exist_ok=True)
        (test_photos / category / f"{stem}.jpg").symlink_to(next((root / "photo").rglob(f"{stem}.jpg")))
    assert main(["index", "--checkpoint", checkpoint, "--photos", str(test_photos), "--out",
                 str(tmp_path / "test.npz"), "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    category, stem = split["test"][0].split("/")
    sketch = next((root / "sketch").rglob(f"{stem}-*.png"))
    assert main(["search", "--index", str(tmp_path / "test.npz"), str(sketch), "-k", str(len(split["test"])),
                 "--json", "--device", "cpu"]) == 0
    found = [Path(hit["path"]).stem for hit in json.loads(capsys.readouterr().out)["results"]]
    assert stem in found and len(found) == len(split["test"])


def test_a_fine_grained_run_starts_from_a_category_checkpoint_without_leaks(instance_run, tmp_path):
    """train.init_from: the weights of another run start this one (here an instance run's own,
    trained on these training photos only: no test photo leaks)."""
    from semi3lib.engine.train import train

    cfg, result = instance_run["no-edgemap-branch"]
    again = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, init_from=str(result.out_dir / "last.pt"), out_dir=str(tmp_path / "again"), epochs=1))
    assert "acc@1" in train(again, progress=False).final_metrics


# --------------------------------------------------------------------------- records and tables


def test_a_fine_grained_studys_tables_show_acc_at_k_and_ranks(tmp_path):
    """RunRecords of an instance-level study carry acc@K and ranks; the study's tables read
    them, the lowest rank in bold, the highest accuracy in bold; a category study's are unchanged."""
    from semi3lib.engine.records import RunRecord, write_record
    from semi3lib.study.records import load_study
    from semi3lib.study.tables import INSTANCE_READER_METRICS, READER_METRICS, reader_metrics_for, study_table

    scores = {"a": [(0.40, 3.0), (0.42, 2.0)], "b": [(0.30, 5.0), (0.33, 4.0)]}
    for row, seeds in scores.items():
        for seed, (acc1, median) in enumerate(seeds):
            metrics = {"acc@1": acc1, "acc@5": acc1 + 0.3, "acc@10": acc1 + 0.4, "mean rank": median + 1,
                       "median rank": median, "mAP@all": 0.5}
            write_record(tmp_path / f"{row}-seed{seed}.json",
                         RunRecord(run=row, seed=seed, metrics={"query": metrics}, wall_seconds=60.0))
    runs, _ = load_study(tmp_path)
    assert reader_metrics_for(runs) == INSTANCE_READER_METRICS
    table = study_table(runs, groups=None, reference=None, metrics=reader_metrics_for(runs))
    assert list(table.values.columns) == ["seeds", "train min", *INSTANCE_READER_METRICS]
    assert table.values.loc["a", "acc@1"] == pytest.approx(0.41)
    assert {("a", "acc@1"), ("a", "median rank"), ("a", "mean rank")} <= table.bold_cells()
    assert reader_metrics_for(runs.drop(columns=["acc@1"])) == READER_METRICS


def test_score_split_puts_the_own_photo_metrics_beside_the_category_ones(fg):
    """An instance split's scores: a query embedded exactly as its own photo ranks it first
    (ties with other photos would count against it: none here)."""
    from semi3lib.engine.evaluate import score_split

    index = read_dataset("sketchy-fg10", root=fg)
    data = ExperimentData(index, make_split(index, "instance"))
    gallery = np.eye(len(data.split.gallery), dtype=np.float32)
    own = own_photo_positions(index, data.split.query)
    query = gallery[[data.split.gallery.index(int(j)) for j in own]]
    emb = {"query": query, "query_labels": np.array([index.label_of(index.sketches[k].category) for k in data.split.query]),
           "query_index": np.array(data.split.query), "query_unreadable": np.zeros(0, dtype=np.int64),
           "gallery": gallery, "gallery_labels": np.array([index.label_of(index.photos[j].category)
                                                           for j in data.split.gallery]),
           "gallery_index": np.array(data.split.gallery), "gallery_unreadable": np.zeros(0, dtype=np.int64)}
    metrics = score_split(emb, data)
    assert metrics["acc@1"] == 1.0 and metrics["median rank"] == 1.0 and "mAP@all" in metrics
    assert list(metrics)[:5] == ["acc@1", "acc@5", "acc@10", "mean rank", "median rank"]
    assert metrics["own photo ranks"] == [1] * len(data.split.query)
    examples = metrics["examples"]  # the first query of each category, with its top photos
    assert [e["category"] for e in examples] == sorted({index.sketches[k].category for k in data.split.query})
    for example in examples:
        assert example["rank"] == 1 and example["top"][0] == example["own"] and len(example["top"]) == 5
        assert Path(example["own"]).stem == Path(example["query"]).stem.rsplit("-", 1)[0]


@pytest.fixture(scope="module")
def instance_study(tmp_path_factory):
    """A tiny plan shaped as configs/fine-grained.yaml: one trained row and its all-photos
    re-scoring, one seed; returns the plan after `semi3 study` ran it."""
    import yaml

    from semi3lib.study.runner import load_plan, run_study

    base = tmp_path_factory.mktemp("instance-study")
    root = make_instance_dataset(base / "sketchy-fg10")
    plan_file = base / "plan.yaml"
    plan_file.write_text(yaml.safe_dump({
        "base": str(REPO / "configs" / "fine-grained-cpu.yaml"),
        "overrides": [f"data.root={root}", f"data.cache_dir={base / 'edges'}", "data.image_size=32",
                      "data.num_workers=0", "model.pretrained=false", "model.embed_dim=16", "model.hidden_dim=32",
                      "train.epochs=1", "train.batch_size=4", "train.instance_photos_per_category=2",
                      "train.max_steps_per_epoch=2", "train.device=cpu"],
        "out_dir": str(base / "results"), "runs_dir": str(base / "runs"), "seeds": [0],
        "rows": {"no-edgemap-branch": {"overrides": ["model.edge_branch=false"]},
                 "no-edgemap-branch-all-photos": {"rescore": "no-edgemap-branch",
                                                  "overrides": ["data.instance_gallery=all"]}}}))
    plan = load_plan(plan_file)
    run_study(plan, progress=False)
    return plan


def test_a_fine_grained_plan_records_acc_at_k_and_rescores_against_every_photo(instance_study):
    from semi3lib.engine.records import read_record

    trained = read_record(instance_study.record_path(instance_study.row("no-edgemap-branch"), 0))
    rescored = read_record(instance_study.record_path(instance_study.row("no-edgemap-branch-all-photos"), 0))
    assert trained.metrics["query"]["gallery"] == 6 and rescored.metrics["query"]["gallery"] == 18
    for record in (trained, rescored):
        assert {"acc@1", "acc@5", "acc@10", "mean rank", "median rank", "mAP@all"} <= set(record.metrics["query"])
    assert rescored.rescored == "no-edgemap-branch" and rescored.wall_seconds == trained.wall_seconds


def test_a_packed_copy_keeps_the_photo_split(fg, tmp_path):
    """`semi3 data pack` carries split.json: the copy's instance split is the source's, not a seeded one."""
    from semi3lib.data.pack import pack_dataset

    out = tmp_path / "packed"
    pack_dataset(fg, out, size=16, name="sketchy-fg10", progress=False)
    packed = make_split(read_dataset("sketchy-fg10", root=out), "instance")
    assert packed.photo_split == "split.json"
    assert packed == make_split(read_dataset("sketchy-fg10", root=fg), "instance")


# Tiny-run settings shared by a category run of "sketchy-mini" and a fine-grained run of "sketchy-fg10".
def _tiny(tmp_path: Path) -> list[str]:
    return [f"data.cache_dir={tmp_path / 'edges'}", "data.image_size=32", "data.num_workers=0",
            "model.pretrained=false", "model.embed_dim=16", "model.hidden_dim=32", "model.edge_branch=false",
            "train.epochs=1", "train.batch_size=4", "train.max_steps_per_epoch=1", "train.device=cpu",
            "train.eval_every=0"]


@pytest.fixture
def category_checkpoints(two_datasets, tmp_path) -> dict[str, Path]:
    """Two tiny category-level runs of "sketchy-mini": ``leaky`` (all its photos) and ``clean``
    (data.exclude_overlap_with=sketchy-fg10); their last.pt."""
    from semi3lib.engine.train import train

    out = {}
    for name, extra in (("leaky", []), ("clean", ["data.exclude_overlap_with=sketchy-fg10"])):
        cfg = load_config(None, ["data.dataset=sketchy-mini", "data.queries_per_category=1", *_tiny(tmp_path),
                                 f"train.out_dir={tmp_path / name}", *extra])
        out[name] = train(cfg, progress=False).out_dir / "last.pt"
    return out


def test_a_category_checkpoint_of_the_other_dataset_starts_a_run_only_without_the_shared_photos(
        category_checkpoints, tmp_path):
    """The issue's case end to end: a category-level model trained on "sketchy-mini" (which
    shares photos with the fine-grained set, two of them test photos there) is refused as the
    start of a fine-grained run; trained with data.exclude_overlap_with=sketchy-fg10, accepted."""
    from semi3lib.engine.train import train

    def fine_run(init: Path, name: str):
        return load_config(None, ["data.dataset=sketchy-fg10", "data.protocol=instance", *_tiny(tmp_path),
                                  "train.instance_photos_per_category=2", f"train.init_from={init}",
                                  f"train.out_dir={tmp_path / name}"])

    with pytest.raises(ConfigError, match="test photos"):
        train(fine_run(category_checkpoints["leaky"], "refused"), progress=False)
    assert not (tmp_path / "refused").exists()  # refused before its run folder exists
    accepted = train(fine_run(category_checkpoints["clean"], "accepted"), progress=False)
    assert "acc@1" in accepted.final_metrics


@pytest.mark.parametrize("overrides, message", [
    (["data.protocol=instance", "data.val_sketches_per_category=2"], "no validation sketches"),
    (["data.protocol=instance", "train.batch_size=10", "train.instance_photos_per_category=4"], "multiple"),
    (["data.exclude_overlap_with=sketchy-mini"], "the dataset itself"),
    (["data.protocol=instance", "data.val_sketches_per_category=0", "data.doodle_adapt_classes=cat"],
     "no photo of its own"),
])
def test_instance_settings_that_cannot_run_are_refused_before_any_data_is_read(overrides, message):
    from semi3lib.engine.prechecks import check_config

    with pytest.raises(ConfigError, match=message):
        check_config(load_config(None, overrides))


def test_refreshing_a_record_adds_the_per_query_ranks_and_refuses_a_changed_score(instance_study):
    """`semi3 study --refresh-scores`: the saved model scored again gives the recorded scores
    back and adds each query's own-photo rank; a record whose score the model does not give
    back is refused and left as it was."""
    import json

    from semi3lib.config import ConfigError
    from semi3lib.engine.records import read_record
    from semi3lib.study.runner import refresh_scores

    row = instance_study.row("no-edgemap-branch")
    path = instance_study.record_path(row, 0)
    original = path.read_text()
    raw = json.loads(original)
    for key in ("own photo ranks", "examples"):  # as a record written before the scoring kept them
        raw["metrics"]["query"].pop(key)
    path.write_text(json.dumps(raw))
    try:
        record = refresh_scores(instance_study, row, 0, progress=False)
        scores = record.metrics["query"]
        assert np.mean(scores["own photo ranks"]) == pytest.approx(scores["mean rank"])
        assert record.wall_seconds == raw["wall_seconds"] and record.history == raw["history"]
        raw["metrics"]["query"]["acc@1"] += 0.25
        path.write_text(json.dumps(raw))
        with pytest.raises(ConfigError, match="acc@1 was"):
            refresh_scores(instance_study, row, 0, progress=False)
        assert json.loads(path.read_text()) == raw
    finally:
        path.write_text(original)
    assert read_record(path).metrics["query"]["own photo ranks"]
