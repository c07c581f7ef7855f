"""Hostile inputs and faults against the `semi3` commands (issue 20): a careless operator's
mistakes, broken files, SIGKILL, a full disk, two processes on one run folder.

Every case asserts the exit status (2: a user or environment error; 1: an internal error), a
one-line message on stderr, and that no file that existed before the command changed (sha256
before and after). Training runs are tiny (2 categories, 32 px, 2 steps) and share one edgemap
cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
import yaml

from semi3lib.io import LOCK_FILE
from semi3lib.cli import main
from data_fixtures import make_sketchy, truncate, write_photo

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")


# --------------------------------------------------------------------------- helpers


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (files or folders)."""
    digests = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def unchanged(before: dict[str, str]) -> bool:
    """Every file of a :func:`snapshot` is still there, byte for byte (new files may exist)."""
    return all(Path(path).is_file() and hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
               for path, digest in before.items())


def semi3(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``semi3 ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args: str, match: str, code: int = 2) -> str:
    """Run ``semi3 ARGS``; assert the exit status and one line on stderr containing ``match``."""
    status, _, err = semi3(capsys, *args)
    assert status == code, f"exit {status}, stderr: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("semi3 "), lines[0]
    assert match in lines[0], lines[0]
    return lines[0]


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}


def spawn(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "semi3lib.cli", *map(str, args)], cwd=REPO,
                            env=subprocess_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.fixture(scope="module")
def edge_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edges")


@pytest.fixture(scope="module")
def tiny(sketchy_mini_root, edge_cache):
    """Overrides for a training run of a few seconds (2 categories, 32 px, 2 steps)."""

    def overrides(out_dir: Path, *extra: str) -> list[str]:
        return [f"data.root={sketchy_mini_root}", "data.max_categories=2", f"data.cache_dir={edge_cache}",
                "data.image_size=32", "train.max_steps_per_epoch=2", "model.pretrained=false",
                f"train.out_dir={out_dir}", *extra]

    return overrides


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory) -> Path:
    """A finished tiny run (read-only for the tests: copy it with :func:`copy_run`)."""
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    out = tmp_path_factory.mktemp("finished") / "run"
    train(load_config(SMOKE, tiny(out)), progress=False)
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    for k in range(3):
        write_photo(folder / "cat" / f"p{k}.jpg", seed=k)
    return folder


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``mount`` (created) with ``options`` for the block. Skips the test, with the
    reason, where it cannot be mounted (it needs Linux and root; CI runs as root)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs Linux and root (CI runs as root)")
    mount.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB tmpfs: a disk that fills up."""
    with mounted_tmpfs(tmp_path / "tmpfs", "size=2m") as mount:
        yield mount


def fill(disk: Path, leave: int = 0) -> None:
    """Fill ``disk`` with a filler file until fewer than ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free - leave
    with open(disk / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free))
        except OSError:
            pass


# --------------------------------------------------------------------------- semi3 index: outputs never replace inputs


def test_index_refuses_to_write_over_its_own_checkpoint(finished_run, photos, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run, photos)
    for flag in ([], ["--overwrite"]):
        refused(capsys, "index", "--checkpoint", run / "best.pt", "--photos", photos, "--out", run / "best.pt",
                "--quiet", *flag, match="is an input of this command")
    assert unchanged(before)


def test_index_refuses_to_write_over_one_of_its_photos(finished_run, photos, capsys):
    before = snapshot(photos, finished_run)
    photo = photos / "cat" / "p1.jpg"
    for flag in ([], ["--overwrite"]):
        refused(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", photo,
                "--quiet", *flag, match="is an input of this command")
    assert unchanged(before)


def test_index_refuses_an_existing_index_without_overwrite(finished_run, photos, tmp_path, capsys):
    index = tmp_path / "g.npz"
    assert semi3(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", index,
                 "--quiet")[0] == 0
    before = snapshot(index)
    refused(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", index, "--quiet",
            match="already exists; pass --overwrite")
    assert unchanged(before)
    assert semi3(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", index,
                 "--quiet", "--overwrite")[0] == 0


def test_export_refuses_a_folder_that_is_not_an_earlier_export(finished_run, tmp_path, capsys, monkeypatch):
    import semi3lib.engine.evaluate as evaluation

    monkeypatch.setattr(evaluation, "load_trained", lambda *a, **k: pytest.fail("loaded the model before checking --out"))
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    refused(capsys, "export", "--checkpoint", run / "last.pt", "--out", run, "--quiet",
            match="not empty and holds no earlier export")
    refused(capsys, "export", "--checkpoint", run / "last.pt", "--out", run / "config.yaml", "--quiet",
            match="is a file, not a folder")
    assert unchanged(before)


def test_index_out_naming_a_directory_is_refused_before_any_photo_is_embedded(finished_run, photos, tmp_path,
                                                                              capsys, monkeypatch):
    import semi3lib.retrieval.search as engine

    monkeypatch.setattr(engine, "load_model", lambda *a, **k: pytest.fail("embedded photos before checking --out"))
    (tmp_path / "out").mkdir()
    refused(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", tmp_path / "out",
            "--quiet", match="is a directory")
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------- semi3 train: run folders


def test_train_into_a_finished_run_without_resume_is_refused_and_overwrite_replaces_it(finished_run, tiny, tmp_path,
                                                                                       capsys):
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(run), match="already holds a run")
    assert unchanged(before)
    assert semi3(capsys, "train", "--quiet", "--overwrite", "--config", SMOKE, *tiny(run, "train.seed=3"))[0] == 0
    assert torch.load(run / "last.pt", weights_only=False)["config"]["train"]["seed"] == 3


def test_resume_with_a_changed_config_is_refused_before_config_yaml_is_written(finished_run, tiny, tmp_path,
                                                                               capsys):
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    refused(capsys, "train", "--quiet", "--resume", "--config", SMOKE, *tiny(run, "train.lr=0.5"),
            match="train.lr: 0.001 -> 0.5")
    assert unchanged(before)


def test_resume_of_a_run_killed_before_its_first_checkpoint_checks_its_config_yaml(tiny, tmp_path, capsys):
    from semi3lib.config import load_config, save_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(SMOKE, tiny(run)), run / "config.yaml")
    before = snapshot(run)
    refused(capsys, "train", "--quiet", "--resume", "--config", SMOKE, *tiny(run, "model.embed_dim=32"),
            match="model.embed_dim: 64 -> 32")
    assert unchanged(before)


def test_train_out_dir_that_is_a_file_is_refused(tiny, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("precious\n")
    refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(target), match="is a file, not a folder")
    assert target.read_text() == "precious\n"


def test_zero_epochs_is_refused_and_nothing_is_written(tiny, tmp_path, capsys):
    refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(tmp_path / "run", "train.epochs=0"),
            match="train.epochs: 0 is out of range (valid: >= 1)")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("results, match", [
    ("config", "is an input of this command"),
    ("existing", "already exists; pass --overwrite"),
    ("directory", "is a directory"),
    ("checkpoint", "is an input of this command"),
])
def test_train_results_file_is_checked_before_training(results, match, tiny, tmp_path, capsys, monkeypatch):
    import semi3lib.engine.train as training

    monkeypatch.setattr(training, "_train", lambda *a, **k: pytest.fail("trained before checking --results"),
                        raising=False)  # without a _train to stop, the hash check below catches it
    config = tmp_path / "config.yaml"
    shutil.copy(SMOKE, config)
    run = tmp_path / "run"
    target = {"config": config, "existing": tmp_path / "old.json", "directory": tmp_path / "records",
              "checkpoint": run / "last.pt"}[results]
    (tmp_path / "old.json").write_text('{"run": "an earlier record"}\n')
    (tmp_path / "records").mkdir()
    before = snapshot(tmp_path)
    refused(capsys, "train", "--quiet", "--config", config, "--results", target, *tiny(run), match=match)
    assert unchanged(before)


@pytest.mark.slow
def test_two_trainings_on_one_run_folder_the_second_is_refused_naming_the_first(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    first = spawn("train", "--quiet", "--config", SMOKE, "--results", tmp_path / "first.json", *tiny(run))
    try:
        deadline = time.monotonic() + 120
        lock = run / LOCK_FILE
        while not (lock.is_file() and lock.read_text().strip()):
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first training never took its lock"
            time.sleep(0.02)
        # Paused while it holds the lock: a tiny run on a fast CPU would otherwise finish (and free
        # the folder) before the second command gets to the lock, and be refused for another reason.
        first.send_signal(signal.SIGSTOP)
        try:
            line = refused(capsys, "train", "--quiet", "--config", SMOKE, "--results", tmp_path / "second.json",
                           *tiny(run, "train.seed=1"), match="is in use")
        finally:
            first.send_signal(signal.SIGCONT)
        assert f"process {first.pid} " in line
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert not (tmp_path / "second.json").exists()
    record = json.loads((tmp_path / "first.json").read_text())
    assert record["config"]["train"]["seed"] == 0
    assert torch.load(run / "last.pt", weights_only=False)["config"]["train"]["seed"] == 0
    steps = [json.loads(line)["step"] for line in (run / "steps.jsonl").read_text().splitlines()]
    assert steps == [2]  # one run's log, not two interleaved
    assert (run / LOCK_FILE).read_text() == ""  # released


# --------------------------------------------------------------------------- faults: SIGKILL, a full disk


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_checkpoint_and_resume_finishes(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--quiet", "--config", SMOKE, *tiny(run, "train.epochs=2", "train.eval_every=0")]
    killed = spawn(*args, SEMI3_DEBUG_KILL_IN_WRITE="last.pt:2")
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 0  # epoch 1's, complete
    assert len(temporaries(run)) == 1  # the killed write's temporary file
    assert semi3(capsys, *args[:1], "--resume", *args[1:])[0] == 0  # the dead process's lock is gone
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 1
    assert temporaries(run) == []


def test_sigkill_during_an_index_write_keeps_the_previous_index(finished_run, photos, tmp_path, capsys):
    from semi3lib.retrieval.index import load_index

    index = tmp_path / "g.npz"
    args = ["index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", index, "--quiet"]
    assert semi3(capsys, *args)[0] == 0
    before = snapshot(index)
    killed = spawn(*args, "--overwrite", SEMI3_DEBUG_KILL_IN_WRITE="g.npz")
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    assert unchanged(before) and len(load_index(index)) == 3
    assert len(temporaries(tmp_path)) == 1
    assert semi3(capsys, *args, "--overwrite")[0] == 0
    assert temporaries(tmp_path) == []  # the dead process's temporary file is cleared


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_leaves_no_temporary_file(tiny, tmpfs, capsys):
    run = tmpfs / "run"
    refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(run), match="No space left on device")
    assert temporaries(run) == [] and not (run / "last.pt").exists()


def test_a_full_disk_during_an_index_write_keeps_the_previous_index(finished_run, photos, tmpfs, capsys):
    index = tmpfs / "g.npz"
    args = ["index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", index, "--quiet"]
    assert semi3(capsys, *args)[0] == 0
    before = snapshot(index)
    fill(tmpfs)
    refused(capsys, *args, "--overwrite", match="No space left on device")
    assert unchanged(before) and temporaries(tmpfs) == []


def test_a_full_disk_during_the_results_write_is_one_line(tiny, tmp_path, tmpfs, capsys, monkeypatch):
    import semi3lib.engine.train as training

    # The record is written after training; what is tested is that write, so training is skipped.
    monkeypatch.setattr(training, "train", lambda cfg, **kwargs: training.TrainResult(
        out_dir=Path(cfg.train.out_dir), history=[{"epoch": 1, "query": {"mAP@all": 0.5}}],
        final_metrics={"mAP@all": 0.5}, wall_seconds=1.0))
    fill(tmpfs)
    refused(capsys, "train", "--quiet", "--config", SMOKE, "--results", tmpfs / "record.json", *tiny(tmp_path / "run"),
            match="No space left on device")
    assert temporaries(tmpfs) == [] and not (tmpfs / "record.json").exists()


# --------------------------------------------------------------------------- configs, overrides, profiles, plans


def test_a_yaml_syntax_error_in_a_config_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\ntrain:\n  epochs: 2\n   lr: 0.1\n")
    refused(capsys, "train", "--config", config, match=f"{config}:4: YAML syntax error")


def test_a_config_whose_top_level_is_a_list_is_refused(tmp_path, capsys):
    config = tmp_path / "list.yaml"
    config.write_text("- train.epochs=1\n")
    refused(capsys, "train", "--config", config, match="must be a mapping")


@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe\x00binary", "not a text (UTF-8) file"),
    (None, "is a directory"),
])
def test_a_config_that_is_binary_or_a_directory_is_refused(content, match, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.mkdir() if content is None else config.write_bytes(content)
    refused(capsys, "train", "--config", config, match=match)


def test_an_unknown_key_in_a_config_names_its_line(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("name: x\ntrain:\n  epochs: 2\n  batchsize: 3\n")
    refused(capsys, "train", "--config", config, match=f"{config}:4: unknown config key train.batchsize")


def test_a_yaml_syntax_error_in_an_override_names_the_override(tmp_path, capsys):
    refused(capsys, "train", "--config", SMOKE, f"train.out_dir={tmp_path / 'run'}", "train.lr=[0.1,",
            match="override 'train.lr=[0.1,': the value is not valid YAML")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, valid", [
    ("train.batch_size=0", ">= 2"),
    ("train.batch_size=-8", ">= 2"),
    ("train.epochs=-1", ">= 1"),
    ("train.lr=0", "> 0"),
    ("train.lr=.nan", "finite"),
    ("train.weight_decay=-1e-4", ">= 0"),
    ("train.warmup_fraction=1.5", "[0, 1)"),
    ("train.momentum=1", "[0, 1)"),
    ("train.max_steps_per_epoch=0", ">= 1"),
    ("train.log_every=0", ">= 1"),
    ("train.eval_every=-1", ">= 0"),
    ("train.device=gpu", "auto, cpu, cuda"),
    ("train.optimizer=adam", "adamw, sgd"),
    ("data.image_size=0", "[32, 4096]"),
    ("data.positive_fraction=2", "[0, 1]"),
    ("data.num_workers=-1", "[0, 256]"),
    ("data.max_categories=0", ">= 1"),
    ("data.protocol=fewshot", "category, zeroshot"),
    ("data.edge_method=laplace", "canny, xdog, sobel"),
    ("model.embed_dim=0", ">= 1"),
    ("model.hidden_dim=-3", ">= 1"),
    ("model.dropout=1", "[0, 1)"),
    ("model.sharing=half", "semi, shared, separate"),
    ("loss.label_smoothing=1", "[0, 1)"),
    ("loss.contrastive_margin=0", "> 0"),
    ("loss.ce_weight=-1", ">= 0"),
])
def test_an_out_of_range_value_is_refused_with_its_valid_range(override, valid, tmp_path, capsys):
    line = refused(capsys, "train", "--config", SMOKE, f"train.out_dir={tmp_path / 'run'}", override,
                   match=f"override {override!r}")
    assert valid in line
    assert not (tmp_path / "run").exists()


def test_an_out_of_range_value_in_a_config_file_names_its_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 1\n  batch_size: 0\n")
    refused(capsys, "train", "--config", config, match=f"{config}:3: train.batch_size: 0 is out of range")


def _book_root(tmp_path: Path, profile: str) -> Path:
    """A project folder with the real notebooks and one profile ``hostile``."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("profiles", "*.ipynb"))
    (root / "notebooks" / "profiles").mkdir()
    (root / "notebooks" / "profiles" / "hostile.yaml").write_text(profile)
    return root


@pytest.mark.parametrize("profile, match", [
    ("common:\n  config: configs/smoke.yaml\n  result_dir: results/book/smoke\n", "hostile.yaml:3: common parameter 'result_dir'"),
    ("common:\n  config: [configs/smoke.yaml\n", "hostile.yaml:3: YAML syntax error"),
    ("- common\n", "hostile.yaml:1: a book profile must be a mapping"),
    ("common: [results_dir]\n", "hostile.yaml:1: 'common' must be a mapping"),
])
def test_a_bad_book_profile_is_refused_before_any_notebook_runs(profile, match, tmp_path, capsys, monkeypatch):
    from semi3lib.book import runner as book

    monkeypatch.setattr(book, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    root = _book_root(tmp_path, profile)
    before = snapshot(root)
    refused(capsys, "book", "run", "--profile", "hostile", "--root", root, "--only", "01_data", match=match)
    assert unchanged(before) and not (root / "_build").exists()


@pytest.mark.parametrize("plan, match", [
    ("base: configs/smoke.yaml\nrows:\n  a: {overrides: [train.epochs=1]\n", "plan.yaml:4: YAML syntax error"),
    ("- base\n", "plan.yaml:1: a study plan must be a mapping"),
    ("base: configs/smoke.yaml\nrows: [a, b]\n", "plan.yaml:2: 'rows' must map row names"),
    ("base: configs/smoke.yaml\nseeds: 3\nrows:\n  a: {}\n", "plan.yaml:2: seeds must be a list"),
    ("base: configs/smoke.yaml\nrows:\n  a: {overrides: train.epochs=1}\n", "plan.yaml:3: row 'a': overrides must be a list"),
    ("base: configs/smoke.yaml\nrows:\n  a: {overrides: [train.batch_size=0]}\n", "plan.yaml:3: row 'a': override"),
])
def test_a_bad_study_plan_is_one_line_naming_the_file_and_line(plan, match, tmp_path, capsys):
    path = tmp_path / "plan.yaml"
    path.write_text(plan.replace("configs/smoke.yaml", SMOKE))
    refused(capsys, "study", "--plan", path, "--list", match=match)


# --------------------------------------------------------------------------- the error boundary


def test_an_internal_error_is_one_line_with_status_1_and_the_traceback_only_under_debug(capsys, monkeypatch):
    import semi3lib.cli.study as study_cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(study_cli, "cmd_study", broken)
    monkeypatch.delenv("SEMI3_DEBUG", raising=False)
    refused(capsys, "study", match="internal error: KeyError", code=1)
    status, _, err = semi3(capsys, "study", "--debug")
    assert status == 1 and "Traceback (most recent call last)" in err
    monkeypatch.setenv("SEMI3_DEBUG", "1")
    status, _, err = semi3(capsys, "study")
    assert status == 1 and "Traceback (most recent call last)" in err


def test_pack_into_a_folder_that_is_not_empty_is_refused(tmp_path, capsys):
    root = make_sketchy(tmp_path / "sketchy", photos_per_category=1, sketches_per_photo=1)
    out = tmp_path / "other-pack"
    (out / "photo").mkdir(parents=True)
    (out / "photo" / "keep.jpg").write_bytes(b"an earlier pack's photo")
    before = snapshot(out, root)
    refused(capsys, "data", "pack", root, "--dataset", "sketchy", "--out", out, "--no-progress",
            match="is not an empty folder")
    assert unchanged(before)


def test_an_edgemap_cache_path_that_is_a_file_is_one_line(tmp_path, capsys):
    root = make_sketchy(tmp_path / "sketchy", photos_per_category=1, sketches_per_photo=1)
    cache = tmp_path / "cache"
    cache.write_text("not a folder\n")
    refused(capsys, "data", "edgemaps", root, "--dataset", "sketchy", "--cache", cache, "--no-progress",
            match="Not a directory")
    assert cache.read_text() == "not a folder\n"


def test_a_book_build_folder_that_is_a_file_is_refused_before_any_notebook_runs(tmp_path, capsys, monkeypatch):
    from semi3lib.book import runner as book

    monkeypatch.setattr(book, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    out = tmp_path / "build"
    out.write_text("a file\n")
    refused(capsys, "book", "run", "--profile", "smoke", "--root", REPO, "--out", out, "--only", "01_data",
            match="is a file, not a folder")
    assert out.read_text() == "a file\n"


@pytest.mark.parametrize("args, match", [
    (["search", "--index", "i.npz", "s.png", "-k", "0"], "argument -k: 0 is out of range (valid: >= 1)"),
    (["data", "pack", "--out", "p", "--quality", "0"], "argument --quality: 0 is out of range (valid: in [1, 100])"),
    (["data", "info", "--queries-per-category", "-2"], "-2 is out of range (valid: >= 1)"),
    (["backbone-check", "--batch-size", "0"], "argument --batch-size: 0 is out of range"),
    (["study", "--seeds", "x"], "expected a whole number, got 'x'"),
])
def test_a_bad_command_line_number_is_one_line_with_its_range(args, match, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and match in err[0], err


# --------------------------------------------------------------------------- checkpoints hold data, never code


class MarkerPayload:
    """What a hostile checkpoint carries: unpickling it runs code (creates ``marker``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def hostile_checkpoint(run: Path, name: str, marker: Path) -> Path:
    """``run/name``: the run's own checkpoint with a code-running payload in place of its RNG
    states, so that only unpickling it as data stands between a command and the payload."""
    ckpt = torch.load(run / "last.pt", weights_only=True)
    ckpt["rng"] = [MarkerPayload(marker)]
    torch.save(ckpt, run / name)
    return run / name


def legacy_checkpoint(run: Path, dest: Path) -> Path:
    """The run's last.pt as semi3lib wrote checkpoints before they were data only: RNG states
    as ``random.getstate()`` and ``np.random.get_state()`` tuples (a numpy array inside)."""
    import numpy as np

    ckpt = torch.load(run / "last.pt", weights_only=True)
    for state in ckpt["rng"]:
        py, npy = state["python"], state["numpy"]
        state["python"] = (py["version"], tuple(py["state"].tolist()), py["gauss_next"])
        state["numpy"] = (npy["algorithm"], npy["key"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                          npy["cached_gaussian"])
    torch.save(ckpt, dest)
    return dest


def test_the_hostile_payload_runs_when_unpickled_as_code(finished_run, tmp_path):
    """The payload of the tests below is real: ``weights_only=False`` would run it."""
    marker = tmp_path / "ran"
    path = hostile_checkpoint(copy_run(finished_run, tmp_path / "run"), "best.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.is_file()


def test_a_checkpoint_semi3_train_writes_is_data_only(finished_run):
    ckpt = torch.load(finished_run / "last.pt", weights_only=True)  # raises on anything but data
    assert {"model", "optimizer", "scheduler", "rng", "config", "num_classes", "identity"} <= set(ckpt)
    assert isinstance(ckpt["rng"][0]["numpy"]["key"], torch.Tensor)


@pytest.mark.parametrize("entry", ["eval", "index", "search --checkpoint", "export", "train --resume"])
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(entry, finished_run, photos, tiny, tmp_path,
                                                                      capsys):
    marker = tmp_path / "ran"
    run = copy_run(finished_run, tmp_path / "run")
    index = tmp_path / "g.npz"
    if entry == "search --checkpoint":
        assert semi3(capsys, "index", "--checkpoint", run / "last.pt", "--photos", photos, "--out", index,
                     "--quiet")[0] == 0
    hostile = hostile_checkpoint(run, "last.pt" if entry == "train --resume" else "best.pt", marker)
    args = {
        "eval": ["eval", "--checkpoint", hostile, "--device", "cpu", "--quiet"],
        "index": ["index", "--checkpoint", hostile, "--photos", photos, "--out", index, "--quiet"],
        "search --checkpoint": ["search", "--index", index, photos / "cat" / "p0.jpg", "--checkpoint", hostile,
                                "--device", "cpu"],
        "export": ["export", "--checkpoint", hostile, "--out", tmp_path / "export", "--quiet"],
        "train --resume": ["train", "--quiet", "--resume", "--config", SMOKE, *tiny(run)],
    }[entry]
    before = snapshot(tmp_path)
    line = refused(capsys, *args, match=f"{hostile} holds objects a checkpoint may not hold (builtins.exec)")
    assert "nothing in it was run" in line and len(line) <= 300
    assert not marker.exists()
    assert unchanged(before)


def test_the_widget_refuses_a_checkpoint_that_would_run_code_in_its_message(finished_run, tmp_path):
    from semi3lib.interactive.widget import SketchSearch

    marker = tmp_path / "ran"
    run = copy_run(finished_run, tmp_path / "run")
    hostile = hostile_checkpoint(run, "best.pt", marker)
    before = snapshot(tmp_path)
    widget = SketchSearch.from_checkpoint(hostile)  # no exception in the cell
    assert widget.error and widget.searcher is None
    assert "holds objects a checkpoint may not hold (builtins.exec)" in widget.message
    assert not marker.exists() and unchanged(before)


def test_a_checkpoint_of_an_earlier_semi3lib_is_refused_with_how_to_convert_it(finished_run, tmp_path, capsys):
    old = legacy_checkpoint(finished_run, tmp_path / "old.pt")
    before = snapshot(tmp_path)
    refused(capsys, "eval", "--checkpoint", old, "--device", "cpu", "--quiet",
            match=f"earlier semi3lib (numpy arrays in its RNG state), which is not read as it is; convert it once, "
                  f"without running anything in it: semi3 checkpoint upgrade {old} NEW.pt")
    assert unchanged(before)


def test_checkpoint_upgrade_converts_an_earlier_checkpoint_losslessly(finished_run, tmp_path, capsys):
    import numpy as np

    old = legacy_checkpoint(finished_run, tmp_path / "old.pt")
    new = tmp_path / "new.pt"
    before = snapshot(old)
    refused(capsys, "checkpoint", "upgrade", old, old, match="is an input of this command")
    status, out, err = semi3(capsys, "checkpoint", "upgrade", old, new)
    assert status == 0, err
    assert json.loads(out)["checkpoint"] == str(new) and unchanged(before)
    legacy, upgraded, original = (torch.load(old, weights_only=False), torch.load(new, weights_only=True),
                                  torch.load(finished_run / "last.pt", weights_only=True))
    for key in original["model"]:
        assert torch.equal(upgraded["model"][key], original["model"][key]), key
    state = upgraded["rng"][0]
    assert state["python"]["state"].tolist() == list(legacy["rng"][0]["python"][1])
    assert np.array_equal(state["numpy"]["key"].numpy(), legacy["rng"][0]["numpy"][1])
    assert torch.equal(state["torch"], original["rng"][0]["torch"])
    assert upgraded["history"] == original["history"] and upgraded["config"] == original["config"]
    refused(capsys, "checkpoint", "upgrade", old, new, match="already exists; pass --overwrite")


def test_checkpoint_upgrade_refuses_a_checkpoint_that_would_run_code(finished_run, tmp_path, capsys):
    marker = tmp_path / "ran"
    hostile = hostile_checkpoint(copy_run(finished_run, tmp_path / "run"), "best.pt", marker)
    before = snapshot(tmp_path)
    refused(capsys, "checkpoint", "upgrade", hostile, tmp_path / "new.pt", match="(builtins.exec): refused")
    assert not marker.exists() and not (tmp_path / "new.pt").exists() and unchanged(before)


def test_set_rng_state_restores_what_rng_state_saved_bit_for_bit():
    import random

    import numpy as np

    from semi3lib.engine.checkpoints import rng_state, set_rng_state

    random.gauss(0, 1), np.random.randn()  # a cached Gaussian on both sides
    state = rng_state()
    first = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3))
    set_rng_state(state)
    again = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3))
    assert first[:4] == again[:4] and torch.equal(first[4], again[4])


def _malformed(run: Path, dest: Path, change) -> Path:
    ckpt = torch.load(run / "last.pt", weights_only=True)
    change(ckpt)
    torch.save(ckpt, dest)
    return dest


@pytest.mark.parametrize("case, match", [
    ("empty", "its model entry holds no weights"),
    ("no num_classes", "is not a checkpoint written by semi3 train: no num_classes entry"),
    ("other network", "its weights do not fit the network its config describes"),
    ("a list", "is not a semi3 checkpoint (it holds a list, not a dict)"),
    ("truncated", "is not a checkpoint: not a torch.save archive (truncated, or another kind of file)"),
])
def test_a_malformed_checkpoint_is_one_readable_line(case, match, finished_run, tmp_path, capsys):
    path = tmp_path / "best.pt"
    if case == "empty":
        torch.save({"model": {}, "config": {}}, path)
    elif case == "no num_classes":
        _malformed(finished_run, path, lambda c: c.pop("num_classes"))
    elif case == "other network":
        _malformed(finished_run, path, lambda c: c["config"]["model"].update(embed_dim=32))
    elif case == "a list":
        torch.save([1, 2], path)
    else:
        data = (finished_run / "last.pt").read_bytes()
        path.write_bytes(data[:len(data) // 2])
    before = snapshot(tmp_path)
    line = refused(capsys, "eval", "--checkpoint", path, "--device", "cpu", "--quiet", match=match)
    assert len(line) <= 300 and unchanged(before)


def test_a_resume_from_a_checkpoint_without_its_run_state_is_one_line(finished_run, tiny, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    _malformed(finished_run, run / "last.pt", lambda c: c.pop("optimizer"))
    before = snapshot(run)
    refused(capsys, "train", "--quiet", "--resume", "--config", SMOKE, *tiny(run),
            match="is not a checkpoint written by semi3 train: no optimizer entry")
    assert unchanged(before)


def test_search_given_a_checkpoint_as_its_index_says_so_in_one_short_line(finished_run, photos, capsys):
    before = snapshot(finished_run)
    line = refused(capsys, "search", "--index", finished_run / "best.pt", photos / "cat" / "p0.jpg",
                   match=f"--index {finished_run / 'best.pt'} is a checkpoint, not an index: build one with semi3 index")
    assert len(line) <= 300 and unchanged(before)


def test_an_error_message_of_any_length_is_cut_to_one_readable_line(capsys, monkeypatch):
    import semi3lib.cli.study as study_cli

    def verbose(args):
        raise ValueError("arrays: " + ", ".join(f"archive/data/{k}" for k in range(3000)))

    monkeypatch.setattr(study_cli, "cmd_study", verbose)
    line = refused(capsys, "study", match="arrays: archive/data/0, archive/data/1")
    assert len(line) <= 500 and line.endswith("more characters: run with --debug)")


def test_eval_on_the_validation_split_of_a_run_without_one_is_one_line(finished_run, capsys):
    before = snapshot(finished_run)
    line = refused(capsys, "eval", "--checkpoint", finished_run / "last.pt", "--split", "val", "--device", "cpu",
                   "--quiet", match="has no validation sketches (data.val_sketches_per_category is 0); use --split query")
    assert len(line) <= 300 and unchanged(before)


# --------------------------------------------------------------------------- exports and packs are written as a whole


def _relative_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by its path relative to it."""
    return {str(Path(path).relative_to(folder)): digest for path, digest in snapshot(folder).items()}


def leftovers(folder: Path) -> list[Path]:
    """What a killed or failed whole-folder write could leave beside its target: temporary
    files and folders (``.*.tmp``) and earlier folders renamed aside (``.*.old``)."""
    return sorted([*folder.glob(".*.tmp"), *folder.glob(".*.old")])


def export_args(run: Path, out: Path) -> list:
    return ["export", "--checkpoint", run / "last.pt", "--out", out, "--quiet"]


@pytest.fixture
def earlier_export(finished_run, tmp_path, capsys) -> Path:
    """A complete export of the finished tiny run in ``tmp_path/export``."""
    out = tmp_path / "export"
    assert semi3(capsys, *export_args(finished_run, out))[0] == 0
    return out


def exported_again(capsys, run: Path, out: Path) -> None:
    """A new export over ``out`` succeeds, verifies, and leaves nothing beside it."""
    from semi3lib.retrieval.export import verify_export

    status, _, err = semi3(capsys, *export_args(run, out))
    assert status == 0, err
    assert verify_export(out)["count"] > 0
    assert leftovers(out.parent) == []


@pytest.fixture
def roomy_tmpfs(tmp_path):
    """A 40 MB tmpfs: room for two tiny exports (14 MB each), then a disk that fills up (the
    ``tmpfs`` fixture's 2 MB holds no export)."""
    with mounted_tmpfs(tmp_path / "roomy-tmpfs", "size=40m") as mount:
        yield mount


def test_an_export_failing_midway_keeps_the_earlier_export_byte_for_byte(finished_run, earlier_export, tmp_path,
                                                                          capsys, monkeypatch):
    import semi3lib.retrieval.export as export
    from semi3lib.data.images import UnreadableImageError

    before = snapshot(earlier_export, finished_run)
    files = _relative_digests(earlier_export)
    real_load_image, photos_read = export.load_image, []

    def third_photo_unreadable(path, mode="RGB"):
        # gallery photos (thumbnails) are read in colour; the encoder and index are written by then
        if mode == "RGB":
            photos_read.append(path)
            if len(photos_read) == 3:
                raise UnreadableImageError(path, "cannot identify image file")
        return real_load_image(path, mode)

    monkeypatch.setattr(export, "load_image", third_photo_unreadable)
    refused(capsys, *export_args(finished_run, earlier_export), match="unreadable image")
    assert unchanged(before) and _relative_digests(earlier_export) == files  # nothing changed, added or deleted
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    exported_again(capsys, finished_run, earlier_export)


def test_sigkill_shortly_after_an_export_starts_keeps_the_earlier_export_and_the_next_run_cleans_up(
        finished_run, earlier_export, tmp_path, capsys):
    before = snapshot(earlier_export, finished_run)
    files = _relative_digests(earlier_export)
    export = spawn(*export_args(finished_run, earlier_export))
    deadline = time.monotonic() + 300
    # killed as soon as it has begun writing the new export (its temporary folder exists)
    while not list(tmp_path.glob(".export.*.tmp")) and export.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    export.send_signal(signal.SIGKILL)
    _, err = export.communicate(timeout=60)
    assert export.returncode == -signal.SIGKILL, err[-2000:]
    assert unchanged(before) and _relative_digests(earlier_export) == files
    assert len(list(tmp_path.glob(".export.*.tmp"))) == 1  # the killed export's half-built folder
    exported_again(capsys, finished_run, earlier_export)  # ... which the next run deletes


def test_sigkill_between_the_two_renames_of_an_export_is_repaired_by_the_next_run(finished_run, earlier_export,
                                                                                   tmp_path, capsys):
    files = _relative_digests(earlier_export)
    before = snapshot(finished_run)
    killed = spawn(*export_args(finished_run, earlier_export), SEMI3_DEBUG_KILL_IN_WRITE="export")
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    # killed after the earlier export was renamed aside, before the new one was renamed in
    assert not earlier_export.exists()
    (aside,) = tmp_path.glob(".export.*.old")
    assert _relative_digests(aside) == files and len(list(tmp_path.glob(".export.*.tmp"))) == 1
    exported_again(capsys, finished_run, earlier_export)
    assert unchanged(before)


def test_recover_folder_puts_back_an_earlier_folder_a_killed_process_left_aside(tmp_path):
    from semi3lib.io import recover_folder

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    aside, half = tmp_path / f".export.{pid}.old", tmp_path / f".export.{pid}.x1y2.tmp"
    (aside / "thumbs").mkdir(parents=True)
    (aside / "thumbs" / "00000.jpg").write_bytes(b"earlier")
    (half / "thumbs").mkdir(parents=True)
    other = tmp_path / f".other.{pid}.old"  # another target's: not ours to touch
    other.mkdir()
    live = tmp_path / f".export.{os.getpid()}.old"  # a live process's swap in progress
    live.mkdir()
    assert sorted(recover_folder(tmp_path / "export")) == sorted([aside, half])
    assert (tmp_path / "export" / "thumbs" / "00000.jpg").read_bytes() == b"earlier"
    assert not aside.exists() and not half.exists() and other.is_dir() and live.is_dir()
    # the swap had finished when it was killed: the folder aside is the replaced one
    (tmp_path / f".export.{pid}.old").mkdir()
    assert recover_folder(tmp_path / "export") == [tmp_path / f".export.{pid}.old"]
    assert (tmp_path / "export" / "thumbs" / "00000.jpg").read_bytes() == b"earlier"
    assert not (tmp_path / f".export.{pid}.old").exists()


def test_a_full_disk_during_an_export_keeps_the_earlier_export_and_the_retry_succeeds(finished_run, roomy_tmpfs,
                                                                                    capsys):
    out = roomy_tmpfs / "export"
    assert semi3(capsys, *export_args(finished_run, out))[0] == 0
    before = snapshot(out, finished_run)
    encoder_bytes = json.loads((out / "manifest.json").read_text())["encoder"]["bytes"]
    # no room for the encoder; then room for the encoder but not for the thumbnails after it
    for leave in (2**20, encoder_bytes + 64 * 2**10):
        fill(roomy_tmpfs, leave=leave)
        line = refused(capsys, *export_args(finished_run, out), match="No space left on device")
        assert f"{out}" in line and ".tmp" not in line  # names the export, not its temporary folder
        assert unchanged(before) and leftovers(roomy_tmpfs) == []
        (roomy_tmpfs / "filler").unlink()
    exported_again(capsys, finished_run, out)


def test_a_full_disk_during_a_pack_leaves_no_half_pack_and_the_retry_succeeds(tmp_path, tmpfs, capsys):
    root = make_sketchy(tmp_path / "sketchy")
    before = snapshot(root)
    out = tmpfs / "packed"
    args = ["data", "pack", root, "--dataset", "sketchy", "--out", out, "--no-progress"]
    fill(tmpfs, leave=64 * 2**10)  # the pack needs about 170 kB here (a page per file)
    line = refused(capsys, *args, match="No space left on device")
    assert f"{out}" in line and ".tmp" not in line
    assert not out.exists() and leftovers(tmpfs) == [] and unchanged(before)
    (tmpfs / "filler").unlink()
    status, printed, err = semi3(capsys, *args)
    assert status == 0, err
    assert "packed 42 files" in printed and json.loads((out / "PACKED.json").read_text())["written"] == 42
    assert leftovers(tmpfs) == [] and unchanged(before)


def test_the_site_refuses_a_tampered_export_naming_the_wrong_file(earlier_export, tmp_path):
    from semi3lib.book.search_page import install_search_page
    from semi3lib.book.site import SiteBuildError
    from semi3lib.retrieval.export import verify_export

    manifest = verify_export(earlier_export)

    def rewrite_manifest(folder: Path) -> None:
        old = json.loads((folder / "manifest.json").read_text())
        del old["files"]
        (folder / "manifest.json").write_text(json.dumps(old))

    def flip_a_byte(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    tampered = {
        "thumbs/00001.jpg: sha256 differs from manifest.json": lambda f: flip_a_byte(f / "thumbs" / "00001.jpg"),
        f"sketch_encoder.onnx: 100 bytes, manifest.json says {manifest['encoder']['bytes']}":
            lambda f: (f / "sketch_encoder.onnx").write_bytes(b"\0" * 100),
        "examples/00.png: missing": lambda f: (f / "examples" / "00.png").unlink(),
        "thumbs/page.html: not listed in manifest.json": lambda f: (f / "thumbs" / "page.html").write_text("<script>"),
        "manifest.json: lists no files": rewrite_manifest,
    }
    for n, (problem, tamper) in enumerate(tampered.items()):
        export = shutil.copytree(earlier_export, tmp_path / f"tampered-{n}")
        tamper(export)
        before = snapshot(export)
        html = tmp_path / f"html-{n}"
        html.mkdir()
        with pytest.raises(SiteBuildError, match="does not verify") as refusal:
            install_search_page(html, export)
        assert problem in str(refusal.value) and "semi3 export" in str(refusal.value)
        assert list(html.iterdir()) == [] and unchanged(before)  # nothing copied, the export left as it was
        shutil.rmtree(export)


# --------------------------------------------------------------------------- every check before the run folder exists
# Each of these was refused only after the run folder was written (so the corrected command
# needed --overwrite), or crashed as an internal error deep in the first step. Now every check
# is made before the folder exists (semi3lib.engine.prechecks.check_run): the refusal leaves
# no run folder, and the corrected command trains into the same folder without --overwrite.

# group: (the corrected command's overrides, [(refused overrides, words of the one-line refusal)])
PRECHECK_GROUPS = {
    "smoke": ([], [
        (["data.max_categories=1"], "1 category (data.max_categories=1); a run needs at least 2"),
        (["train.batch_size=100000"], "train.batch_size=100000 is larger than the"),
        (["loss.ce_weight=0", "loss.alignment_weight=0", "loss.contrastive_weight=0"], "every loss weight is 0"),
        (["train.lr=1e300"], "train.lr: 1e+300 is not a usable learning rate (valid: at most 10"),
        (["train.backbone_lr_scale=1e5"], "train.lr * train.backbone_lr_scale: 100 is not"),
        (["loss.ce_weight=1e39"], "loss.ce_weight: 1e+39 does not fit the float32"),
        (["model.embed_dim=1000000000"], "model.embed_dim=1000000000"),
        (["model.split_stage=99"], "model.split_stage must be in 1.."),
    ]),
    "two-branch": (["model.edge_branch=false"], [
        (["model.edge_branch=false", "loss.ce_weight=0"], "need the edgemap branch (model.edge_branch=false)"),
        (["model.edge_branch=false", "model.gallery_embedding=photo+edge"],
         "model.gallery_embedding=photo+edge needs the edgemap branch"),
    ]),
    "zero-shot": (["data.protocol=zeroshot", "data.unseen_categories=1", "data.zeroshot_gallery=all"], [
        (["data.protocol=zeroshot"], "holds out 25 categories (sketchy-mini's standard 25"),
        (["data.protocol=zeroshot", "data.unseen_categories=2"], "leaving 1 to train on"),
        (["data.protocol=zeroshot", "data.unseen_categories=1"], "every photo would be relevant"),
    ]),
}


@pytest.mark.slow  # trains the corrected run
@pytest.mark.parametrize("group", PRECHECK_GROUPS)
def test_a_refused_run_leaves_no_run_folder_and_the_corrected_run_needs_no_overwrite(group, tiny, tmp_path, capsys):
    corrected, refusals = PRECHECK_GROUPS[group]
    config = tmp_path / "config.yaml"
    shutil.copy(SMOKE, config)
    (tmp_path / "old.json").write_text('{"run": "an earlier record"}\n')
    run = tmp_path / "run"

    def three(*extra: str) -> list[str]:  # 3 sketchy-mini categories: a zero-shot split fits
        return tiny(run, "data.max_categories=3", *extra)

    before = snapshot(tmp_path)
    for overrides, match in refusals:
        line = refused(capsys, "train", "--quiet", "--config", config, *three(*overrides), match=match)
        assert len(line) <= 320, line
        assert not run.exists(), f"{overrides} left a run folder: {sorted(p.name for p in run.iterdir())}"
        assert unchanged(before)
    code, out, err = semi3(capsys, "train", "--quiet", "--config", config, *three(*corrected))
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["epochs"] == 1
    assert (run / "last.pt").is_file() and (run / "split.json").is_file()
    assert unchanged(before)


def test_a_model_too_big_for_memory_is_refused_with_the_bytes_it_needs(tiny, tmp_path, capsys):
    line = refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(tmp_path / "run", "model.embed_dim=1000000000"),
                   match="for weights, gradients and optimiser state, more than half of this machine's memory")
    needed = float(line.split("needs about ")[1].split(" GB")[0].replace(",", ""))
    assert 1000 < needed < 10000  # ~4 values of 4 bytes for each of the ~1.3e11 embedding weights
    assert not (tmp_path / "run").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody may write to: permission bits, or for root (whom they do not stop)
    a read-only tmpfs."""
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "size=1m,ro") as mount:
        yield mount


@pytest.mark.slow  # trains the run once the folder is writable
def test_results_or_a_run_folder_in_a_read_only_folder_are_refused_before_any_work(read_only_folder, tiny, tmp_path,
                                                                                   capsys, monkeypatch):
    import semi3lib.engine.train as training

    run = tmp_path / "run"
    before = snapshot(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(training, "_train", lambda *a, **k: pytest.fail("trained before checking the outputs"))
        refused(capsys, "train", "--quiet", "--config", SMOKE, "--results", read_only_folder / "records" / "r.json",
                *tiny(run), match=f"the folder {read_only_folder} is not writable")
        refused(capsys, "train", "--quiet", "--config", SMOKE, *tiny(read_only_folder / "run"),
                match=f"train.out_dir {read_only_folder / 'run'}: the folder {read_only_folder} is not writable")
    assert not run.exists() and unchanged(before)
    record = tmp_path / "records" / "r.json"
    code, _, err = semi3(capsys, "train", "--quiet", "--config", SMOKE, "--results", record, *tiny(run))
    assert code == 0, err
    assert json.loads(record.read_text())["out_dir"] == str(run)


def test_export_with_an_unknown_profile_is_one_line_listing_the_profiles(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the profiles are the repository's notebooks/profiles/*.yaml
    line = refused(capsys, "export", "--profile", "nosuch", "--out", tmp_path / "export",
                   match="--profile nosuch: no profile 'nosuch'")
    assert line.endswith("profiles: cpu, full, smoke")
    assert not (tmp_path / "export").exists()


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "base": SMOKE, "out_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs"), "seeds": [0, 1],
        "rows": {"imagenet-features": {"baseline": "imagenet"}, "semi3net": {},
                 "more-seeds": {"seeds": [0, 1, 2, 3]}}}))
    return plan


def test_study_seeds_outside_the_plan_are_refused_naming_the_plans_seeds(tmp_path, capsys):
    plan = _plan(tmp_path)
    before = snapshot(tmp_path)
    line = refused(capsys, "study", "--plan", plan, "--seeds", "1", "99",
                   match="--seeds 99: not a seed of the plan's rows, which run seeds 0, 1, 2, 3")
    assert "baseline" not in line
    refused(capsys, "study", "--plan", plan, "--only", "semi3net", "--seeds", "3",
            match="--seeds 3: not a seed of row(s) semi3net, which run seeds 0, 1;")
    refused(capsys, "study", "--plan", plan, "--only", "imagenet-features", "--seeds", "1",
            match="which run seeds 0 (a baseline row runs its first seed only)")
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()
    assert unchanged(before)


def test_study_seeds_any_selected_row_runs_are_accepted(tmp_path):
    from semi3lib.study.runner import check_seeds, load_plan

    plan = load_plan(_plan(tmp_path))
    check_seeds(plan, plan.rows, [3])  # more-seeds runs seed 3; the rows without it skip it
    check_seeds(plan, [plan.row("semi3net")], [0, 1])

# --------------------------------------------------------------------------- unreadable photos and sketches, folder links, file names
# A file that cannot be read is out of the computation: no row in the embeddings or the labels,
# counted and named; `semi3 eval` and `semi3 index` refuse above --max-unreadable (default 5 %).

THREE = ("airplane", "alarm_clock", "ant")


def sketchy_copy(sketchy_mini_root: Path, dest: Path, categories=THREE) -> Path:
    """A sketchy-mini copy of real files: ``categories``' photos (25 each) and whole-canvas sketches."""
    for folder in ("photo/tx_000000000000", "sketch/tx_000000000000"):
        for cat in categories:
            shutil.copytree(sketchy_mini_root / folder / cat, dest / folder / cat)
    return dest


def png_bomb(path: Path, side: int = 100_000) -> Path:
    """A valid-looking PNG header declaring ``side`` x ``side`` pixels (far beyond PIL's
    Image.MAX_IMAGE_PIXELS), with a few bytes of data: a decompression bomb, in 100 bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def scorer(finished_run):
    """The finished tiny run's model; the data settings to read a dataset folder with (the
    three categories, the checkpoint's image settings); and a function scoring the model on a
    folder as evaluate_model does: (metrics, data)."""
    import dataclasses

    from semi3lib.data.experiment import load_experiment_data
    from semi3lib.engine.evaluate import evaluate_model, load_model

    model, cfg, _ = load_model(finished_run / "last.pt")

    def settings(root: Path):
        return dataclasses.replace(cfg.data, root=str(root), max_categories=len(THREE))

    def score(root: Path, **kwargs):
        data = load_experiment_data(settings(root))
        return evaluate_model(model, data, settings(root), **kwargs), data

    return model, settings, score


def _damage(case: str, photos: Path) -> list[Path]:
    """Damage a copy's photos as ``case`` says; returns the files that cannot be read."""
    if case == "25 text files named .jpg in one category":
        bad = [photos / "ant" / f"notes_{k:02d}.jpg" for k in range(25)]
        for k, path in enumerate(bad):
            path.write_text(f"not a photo {k}\n")
        return bad
    if case == "a truncated JPEG":
        return [truncate(sorted((photos / "alarm_clock").glob("*.jpg"))[3])]
    assert case == "a decompression-bomb PNG"
    return [png_bomb(photos / "airplane" / "zz_bomb.png")]


@pytest.mark.parametrize("case", ["25 text files named .jpg in one category", "a truncated JPEG",
                                  "a decompression-bomb PNG"])
def test_unreadable_gallery_photos_are_left_out_and_score_as_if_they_were_never_there(
        case, scorer, sketchy_mini_root, tmp_path):
    _, _, score = scorer
    root = sketchy_copy(sketchy_mini_root, tmp_path / "damaged")
    bad = _damage(case, root / "photo" / "tx_000000000000")
    before = snapshot(root)
    with pytest.warns(RuntimeWarning, match="unreadable image"):
        damaged, data = score(root)
    intact_root = shutil.copytree(root, tmp_path / "intact")  # the same files, the bad ones deleted
    for path in bad:
        (intact_root / path.relative_to(root)).unlink()
    intact, intact_data = score(intact_root)

    listed = len(data.split.gallery)
    assert damaged["gallery"] == intact["gallery"] == listed - len(bad)
    assert damaged["gallery_unreadable"] == len(bad) and damaged["queries_unreadable"] == 0
    assert damaged["unreadable_files"] == [data.index.relative(p) for p in sorted(bad)[:10]]
    assert [data.index.relative(data.index.sketches[k].path) for k in data.split.query] == \
        [intact_data.index.relative(intact_data.index.sketches[k].path) for k in intact_data.split.query]
    # Equal up to float rounding: the batches differ (100 vs 75 photos), and the rounding of a
    # batch's convolutions with them, which can swap near-tied photos of this 2-step model.
    # Scoring the 25 text files as blank "ant" photos gave 0.394 here instead of 0.374.
    for metric in ("mAP@all", "mAP@200", "P@10", "P@25", "queries"):
        assert damaged[metric] == pytest.approx(intact[metric], abs=1e-4), metric
    assert "gallery_unreadable" not in intact and unchanged(before)


def test_an_unreadable_query_sketch_is_left_out_not_scored_as_a_blank(scorer, sketchy_mini_root, tmp_path):
    from semi3lib.engine.evaluate import embed_split
    from semi3lib.engine.metrics import retrieval_metrics

    model, settings, score = scorer
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data")
    intact, data = score(root)
    emb = embed_split(model, data, settings(root))  # the intact queries, to leave one out by hand
    victim = 4  # the fifth query sketch
    truncate(data.index.sketches[data.split.query[victim]].path)
    with pytest.warns(RuntimeWarning, match="unreadable image"):
        damaged, _ = score(root)
    keep = np.arange(len(emb["query"])) != victim
    expected = retrieval_metrics(emb["query"][keep], emb["query_labels"][keep], emb["gallery"], emb["gallery_labels"])
    assert damaged["queries"] == intact["queries"] - 1 == keep.sum()
    assert damaged["queries_unreadable"] == 1 and damaged["gallery_unreadable"] == 0
    assert damaged["unreadable_files"] == [data.index.relative(data.index.sketches[data.split.query[victim]].path)]
    for metric in ("mAP@all", "mAP@200", "P@10"):
        assert damaged[metric] == pytest.approx(expected[metric], abs=1e-6), metric


@pytest.fixture
def lone_checkpoint(finished_run, tmp_path) -> Path:
    """The finished run's last.pt alone in a folder: `semi3 eval` makes the split from the data."""
    (tmp_path / "ckpt").mkdir()
    return Path(shutil.copy(finished_run / "last.pt", tmp_path / "ckpt" / "last.pt"))


def test_eval_refuses_a_gallery_with_more_unreadable_photos_than_allowed_and_names_the_first(
        lone_checkpoint, sketchy_mini_root, tmp_path, capsys):
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data")
    bad = _damage("25 text files named .jpg in one category", root / "photo" / "tx_000000000000")
    before = snapshot(root, lone_checkpoint.parent)
    args = ["eval", "--checkpoint", lone_checkpoint, "--device", "cpu", "--quiet", f"data.root={root}",
            "data.max_categories=3"]
    with pytest.warns(RuntimeWarning):
        line = refused(capsys, *args, match="25 of 100 gallery photos (25.0%) cannot be read, more than the 5% allowed "
                                            "(first: photo/tx_000000000000/ant/notes_00.jpg)")
    assert "--max-unreadable" in line and unchanged(before)

    with pytest.warns(RuntimeWarning):
        status, out, err = semi3(capsys, *args, "--max-unreadable", "0.3")
    assert status == 0, err
    assert "gallery: 75, skipped: 25 (first: photo/tx_000000000000/ant/notes_00.jpg)" in out.splitlines()
    assert "queries: 30, skipped: 0" in out.splitlines()
    with pytest.warns(RuntimeWarning):
        status, out, _ = semi3(capsys, *args, "--max-unreadable", "0.3", "--json")
    metrics = json.loads(out)
    assert (metrics["gallery"], metrics["gallery_unreadable"]) == (75, 25)
    assert metrics["unreadable_files"] == [str(p.relative_to(root)) for p in bad[:10]]
    assert unchanged(before)


def test_eval_within_the_threshold_scores_and_names_what_it_left_out(lone_checkpoint, sketchy_mini_root, tmp_path,
                                                                    capsys):
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data")
    bomb = png_bomb(root / "photo" / "tx_000000000000" / "airplane" / "zz_bomb.png")
    before = snapshot(root, lone_checkpoint.parent)
    with pytest.warns(RuntimeWarning, match="DecompressionBombError"):
        status, out, err = semi3(capsys, "eval", "--checkpoint", lone_checkpoint, "--device", "cpu", "--quiet",
                                 f"data.root={root}", "data.max_categories=3")
    assert status == 0, err
    assert f"gallery: 75, skipped: 1 (first: {bomb.relative_to(root)})" in out.splitlines()
    assert unchanged(before)


def test_an_all_unreadable_gallery_is_refused_even_without_a_threshold(scorer, sketchy_mini_root, tmp_path):
    from semi3lib.engine.evaluate import UnreadableDataError

    _, _, score = scorer
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data")
    for photo in (root / "photo" / "tx_000000000000").rglob("*.jpg"):
        photo.write_text("gone\n")
    with pytest.warns(RuntimeWarning), pytest.raises(UnreadableDataError, match="none of the 75 gallery photos"):
        score(root)


def test_index_refuses_more_unreadable_images_than_allowed_and_names_the_first(finished_run, photos, tmp_path,
                                                                               capsys):
    for k in range(3):
        (photos / "cat" / f"text{k}.jpg").write_text("not a photo\n")
    out = tmp_path / "index.npz"
    before = snapshot(photos, finished_run)
    with pytest.warns(UserWarning):
        refused(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos, "--out", out,
                "--device", "cpu", "--quiet", match=f"3 of 6 images under {photos} (50.0%) cannot be read, more than "
                                                    f"the 5% allowed (first: {photos / 'cat' / 'text0.jpg'})")
    assert not out.exists() and unchanged(before)
    with pytest.warns(UserWarning):
        status, stdout, err = semi3(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos,
                                    "--out", out, "--device", "cpu", "--quiet", "--max-unreadable", "0.5")
    assert status == 0, err
    assert json.loads(stdout) == {"index": str(out), "photos": 3, "skipped": 3,
                                  "first_skipped": str(photos / "cat" / "text0.jpg")}


def test_index_follows_a_linked_folder_of_photos_and_a_link_loop_adds_nothing(finished_run, photos, tmp_path,
                                                                              capsys):
    from semi3lib.retrieval.index import load_index

    elsewhere = tmp_path / "elsewhere"
    for k in range(4):
        write_photo(elsewhere / f"q{k}.jpg", seed=10 + k)
    (photos / "linked").symlink_to(elsewhere, target_is_directory=True)
    (photos / "cat" / "loop").symlink_to(photos, target_is_directory=True)  # back up the tree
    (photos / "again").symlink_to(elsewhere, target_is_directory=True)  # a second link to one folder
    out = tmp_path / "index.npz"
    before = snapshot(photos, elsewhere, finished_run)
    status, stdout, err = semi3(capsys, "index", "--checkpoint", finished_run / "last.pt", "--photos", photos,
                                "--out", out, "--device", "cpu", "--quiet")
    assert status == 0, err
    assert json.loads(stdout) == {"index": str(out), "photos": 7, "skipped": 0}
    indexed = sorted(Path(p).name for p in load_index(out).paths)
    assert indexed == ["p0.jpg", "p1.jpg", "p2.jpg", "q0.jpg", "q1.jpg", "q2.jpg", "q3.jpg"]
    assert unchanged(before)


NOT_UTF8 = b"caf\xe9"  # Latin-1 "café": not UTF-8


@pytest.mark.slow  # trains a run without the file
def test_a_file_name_that_is_not_utf8_is_reported_by_data_info_and_training_runs_without_it(
        tiny, sketchy_mini_root, tmp_path, capsys):
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data", categories=THREE[:2])
    photo = sorted((root / "photo" / "tx_000000000000" / "airplane").glob("*.jpg"))[0]
    named = os.fsencode(photo.parent) + b"/" + NOT_UTF8 + b".jpg"
    os.rename(os.fsencode(photo), named)
    before = snapshot(root)
    status, out, err = semi3(capsys, "data", "info", root, "--dataset", "sketchy-mini", "--json")
    assert status == 0, err
    info = json.loads(out)
    assert info["photos"] == 49 and info["skipped"] == 1
    assert info["skipped_files"] == [f"{root}/photo/tx_000000000000/airplane/caf\\xe9.jpg: file name is not valid "
                                     "UTF-8 (caf\\xe9.jpg): rename it"]
    status, out, err = semi3(capsys, "data", "info", root, "--dataset", "sketchy-mini")  # the table prints it too
    assert status == 0 and "caf\\xe9.jpg: file name is not valid UTF-8" in out, err

    status, out, err = semi3(capsys, "train", "--config", SMOKE, *tiny(tmp_path / "run", f"data.root={root}"),
                             "--quiet")
    assert status == 0, err
    assert unchanged(before)


def test_a_category_folder_whose_name_is_not_utf8_is_refused_naming_it(sketchy_mini_root, tmp_path, capsys):
    root = sketchy_copy(sketchy_mini_root, tmp_path / "data", categories=THREE[:2])
    for kind in ("photo", "sketch"):
        folder = root / kind / "tx_000000000000"
        os.rename(os.fsencode(folder / "alarm_clock"), os.fsencode(folder) + b"/" + NOT_UTF8)
    before = snapshot(root)
    refused(capsys, "data", "info", root, "--dataset", "sketchy-mini",
            match=f"folder name is not valid UTF-8: {root}/photo/tx_000000000000/caf\\xe9; rename it")
    assert unchanged(before)


# --------------------------------------------------------------------------- which data a run read
@pytest.mark.parametrize("kind", ["nowhere", "a file", "a typo"])
def test_a_semi3_data_that_is_not_the_datasets_folder_refuses_the_run_before_its_folder(kind, sketchy_mini_root,
                                                                                       edge_cache, tmp_path, capsys,
                                                                                       monkeypatch):
    """`SEMI3_DATA` pointing nowhere, at a file, or at a folder without the dataset: exit 2 and one
    line naming it, never a silent run on the next copy of the data in the search order."""
    target = {"nowhere": tmp_path / "nowhere", "a file": tmp_path / "data.txt", "a typo": tmp_path / "shared-dat"}[kind]
    if kind == "a file":
        target.write_text("not a folder")
    if kind == "a typo":
        target.mkdir()
    monkeypatch.setenv("SEMI3_DATA", str(target))
    run = tmp_path / "run"
    overrides = ["data.max_categories=2", f"data.cache_dir={edge_cache}", "data.image_size=32",
                 "train.max_steps_per_epoch=2", "model.pretrained=false", f"train.out_dir={run}"]
    line = refused(capsys, "train", "--quiet", "--config", str(REPO / "configs" / "smoke.yaml"), *overrides,
                   match=str(target))
    assert len(line) <= 300 and not run.exists()
