"""``semi3 data``: info (JSON and table) on sketchy-mini, edgemaps, pack, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import make_sketchy, truncate
from PIL import Image

from semi3lib.cli import main
from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import make_split

REPO = Path(__file__).resolve().parents[1]


def _check_issue_counts(info: dict) -> None:
    assert info["categories"] == 125
    assert info["photos"] == 3125
    assert info["sketches"] == {"tx_000000000000": 3125, "tx_000100000000": 1250, "total": 4375}
    assert info["skipped"] == 0
    category = info["splits"]["category"]
    assert category["query"] == 1250 and category["gallery"] == 3125
    assert category["train"] + category["query"] < 4375  # query drawings' other renderings left out
    zeroshot = info["splits"]["zeroshot"]
    assert zeroshot["categories_unseen"] == 25 and zeroshot["gallery"] == 625


def test_info_json_on_sketchy_mini_reports_the_issue_counts(sketchy_mini_root, capsys):
    assert main(["data", "info", str(sketchy_mini_root), "--json"]) == 0
    _check_issue_counts(json.loads(capsys.readouterr().out))


def test_info_table_is_readable(sketchy_mini_root, capsys):
    assert main(["data", "info", str(sketchy_mini_root)]) == 0
    out = capsys.readouterr().out
    assert "categories  125" in out and "tx_000100000000" in out
    assert any(line.split()[:2] == ["category", "1250"] for line in out.splitlines())


def test_installed_semi3_command_finds_sketchy_mini_by_default(sketchy_mini_root):
    exe = shutil.which("semi3", path=str(Path(sys.executable).parent)) or shutil.which("semi3")
    assert exe, "the semi3 console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if k != "SEMI3_DATA"}
    proc = subprocess.run([exe, "data", "info", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert Path(info["root"]) == sketchy_mini_root
    _check_issue_counts(info)


def test_bad_input_is_a_one_line_error_with_status_2(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    (tmp_path / "flat").mkdir()
    assert main(["data", "info", str(tmp_path / "flat"), "--dataset", "tuberlin-ext"]) == 2
    assert "expected <root>/png/<category>/*.png" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["data", "edgemaps", str(tmp_path), "--method", "hed"])
    assert exit_.value.code == 2 and "invalid choice: 'hed'" in capsys.readouterr().err
    assert main(["data", "edgemaps", str(tmp_path / "flat"), "--dataset", "tuberlin-ext",
                 "--param", "sigma"]) == 2


def test_info_verify_counts_unreadable_files(tmp_path, capsys):
    root = make_sketchy(tmp_path / "s", extended=None)
    truncate(root / "photo/tx_000000000000/airplane/n00000000_2.jpg")
    assert main(["data", "info", str(root), "--dataset", "sketchy", "--json", "--verify",
                 "--queries-per-category", "2", "--unseen", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["skipped"] == 1 and info["photos"] == 8 and "n00000000_2.jpg" in info["skipped_files"][0]
    assert info["splits"]["category"]["query"] == 6 and info["splits"]["zeroshot"]["categories_unseen"] == 1


def test_edgemaps_command_fills_the_cache_then_reuses_it(tmp_path, capsys):
    root = make_sketchy(tmp_path / "s", extended=None)
    args = ["data", "edgemaps", str(root), "--dataset", "sketchy", "--method", "xdog", "--param", "sigma=1.2",
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    assert "9 photos, 9 computed, 0 already cached" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 computed, 9 already cached" in capsys.readouterr().out
    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert cache_dir.name.startswith("xdog-")
    assert json.loads((cache_dir / "params.json").read_text())["params"]["sigma"] == 1.2


def test_pack_writes_the_same_layout_smaller_so_splits_match(tmp_path, capsys):
    root = make_sketchy(tmp_path / "s", photo_size=(160, 120))
    out = tmp_path / "packed"
    assert main(["data", "pack", str(root), "--dataset", "sketchy", "--size", "64", "--out", str(out),
                 "--no-progress"]) == 0
    assert "packed 42 files" in capsys.readouterr().out
    original, packed = read_dataset("sketchy", root), read_dataset("sketchy", out)
    assert [original.relative(p.path) for p in original.photos] == [packed.relative(p.path) for p in packed.photos]
    assert [original.relative(s.path) for s in original.sketches] == [packed.relative(s.path) for s in packed.sketches]
    assert make_split(original, queries_per_category=2, seed=3) == make_split(packed, queries_per_category=2, seed=3)
    with Image.open(packed.photos[0].path) as img:
        assert img.format == "JPEG" and min(img.size) == 64
    with Image.open(packed.sketches[0].path) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == (64, 64)
    assert json.loads((out / "PACKED.json").read_text())["written"] == 42
    assert main(["data", "pack", str(root), "--dataset", "sketchy", "--out", str(root / "inside")]) == 2


def test_a_pack_failing_midway_leaves_no_half_pack_and_the_retry_needs_nothing_cleared(tmp_path, capsys,
                                                                                       monkeypatch):
    import errno

    import semi3lib.data.pack as pack

    root = make_sketchy(tmp_path / "s")
    out = tmp_path / "packed"
    args = ["data", "pack", str(root), "--dataset", "sketchy", "--out", str(out), "--no-progress"]
    real_load_image, reads = pack.load_image, []

    def failing_disk(path, mode="RGB"):
        reads.append(path)
        if len(reads) == 20:  # about half way: 19 files are written by then
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real_load_image(path, mode)

    monkeypatch.setattr(pack, "load_image", failing_disk)
    assert main(args) == 2
    assert "Input/output error" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no half pack, no temporary
    monkeypatch.undo()
    assert main(args) == 0
    assert "packed 42 files" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packed", "s"]
    assert json.loads((out / "PACKED.json").read_text())["out"] == str(out)
