"""The plan of issue 33 (configs/why-edgemap.yaml), the host check (configs/host-check.yaml,
a per-host plan) and the host effect it reports; nothing here trains."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from semi3lib.config import ConfigError
from semi3lib.engine.hardware import current_host_kind, host_slug
from semi3lib.study.hosts import CAPPED_DIR, CHECK_DIR, cap_check_text, cap_checks, host_effect_summary, host_effect_table
from semi3lib.study.runner import load_plan

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "configs" / "why-edgemap.yaml"


def test_the_plan_runs_five_seeds_of_each_switch_in_the_tuned_128px_setting(monkeypatch):
    monkeypatch.chdir(REPO)  # the plan names its base relative to the repository
    plan = load_plan(PLAN)
    names = [row.name for row in plan.rows]
    assert names[:4] == ["semi3net", "no-edgemap-branch", "no-edge-ce", "domain-bn"]
    assert all(plan.seeds_of(row) == [0, 1, 2, 3, 4] for row in plan.rows)
    configs = {row.name: plan.config(row, 3) for row in plan.rows}
    assert all(c.loss.label_smoothing == 0.1 and c.data.image_size == 128 and c.train.seed == 3
               for c in configs.values())
    assert configs["no-edgemap-branch"].model.edge_branch is False
    assert configs["no-edge-ce"].loss.edge_ce is False and configs["no-edge-ce"].model.domain_bn is False
    assert configs["domain-bn"].model.domain_bn is True and configs["domain-bn"].loss.edge_ce is True
    assert configs["semi3net"].loss.edge_ce is True and configs["semi3net"].model.domain_bn is False
    # a re-scored row trains nothing: it reads the trained row's run folder, gallery photo+edge
    rescored = plan.row("domain-bn-photo+edge")
    assert rescored.rescore == "domain-bn" and configs["domain-bn-photo+edge"].model.gallery_embedding == "photo+edge"
    assert configs["domain-bn-photo+edge"].model.domain_bn is True
    assert configs["domain-bn-photo+edge"].train.out_dir == str(plan.run_dir(plan.row("domain-bn"), 3))


def test_the_plan_writes_its_rule_down_before_any_seed_runs():
    comment = PLAN.read_text().split("\nbase:")[0]
    header = " ".join(line.lstrip("#").strip() for line in comment.splitlines())  # as prose
    for words in ("seed k against seed k", "One kind of host per comparison", "ahead with every seed",
                  "larger sample std", "Seeds 0-4"):
        assert words in header


def test_a_per_host_plan_names_its_records_and_runs_by_the_host(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    plan = load_plan(REPO / "configs" / "host-check.yaml")
    row = plan.rows[0]
    assert plan.per_host and plan.seeds_of(row) == [0]
    assert Path(plan.out_dir) == CHECK_DIR  # where the results page reads the host check
    slug = host_slug(current_host_kind())
    assert plan.record_path(row, 0).name == f"chapter-4-seed0-{slug}.json"
    assert plan.run_dir(row, 0).name == f"chapter-4-seed0-{slug}"
    cfg = plan.config(row, 0)
    assert cfg.data.image_size == 128 and cfg.train.epochs == 7 and cfg.name == "chapter-4"
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "host-check.yaml").read_text().replace("per_host: true", "per_host: yes please"))
    with pytest.raises(ConfigError, match="per_host must be true or false"):
        load_plan(bad)


def test_host_slugs_are_file_name_parts():
    assert host_slug("AMD EPYC (AVX2)") == "amd-epyc-avx2"
    assert host_slug("Intel(R) Xeon(R) Processor (instruction set not recorded)") == \
        "intel-r-xeon-r-processor-instruction-set-not-recorded"


def _record(path: Path, score: float, machine: dict, seed: int = 0, run: str = "semi3net", **config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "seed": seed, "metrics": {"query": {"mAP@all": score}},
                                "config": {"train": {"seed": seed, **config}}, "machine": machine}))


def test_the_host_effect_sets_each_kind_of_host_beside_the_seed_spread(tmp_path):
    amd, avx512, xeon = ({"cpu": "AMD EPYC"}, {"cpu": "AMD EPYC", "cpu_capability": "AVX512"},
                         {"cpu": "Intel Xeon", "cpu_capability": "AVX2"})
    book = tmp_path / "results" / "book" / "cpu" / "04_training.json"
    book.parent.mkdir(parents=True)
    book.write_text(json.dumps({"config": {"train": {"seed": 0}}, "final_query_metrics": {"mAP@all": 0.580},
                                "hardware": amd}))
    study = tmp_path / "results" / "sketchy-mini"
    for seed, score in enumerate([0.590, 0.577, 0.579]):  # std 0.00700 by hand
        _record(study / f"semi3net-seed{seed}.json", score, amd, seed)
    check = tmp_path / "results" / "host-check"
    _record(check / "chapter-4-seed0-amd-epyc-avx512.json", 0.600, avx512, run="chapter-4")
    _record(check / "chapter-4-seed0-intel-xeon-avx2.json", 0.570, xeon, run="chapter-4")
    _record(check / "chapter-4-seed0-other.json", 0.999, xeon, run="chapter-4", epochs=1)  # another config
    table = host_effect_table(check, root=tmp_path)
    assert list(table["host"]) == ["AMD EPYC (instruction set not recorded)"] * 2 + \
        ["AMD EPYC (AVX512)", "Intel Xeon (AVX2)", "Intel Xeon (AVX2)"]
    assert list(table["same config"]) == [True, True, True, True, False]
    summary = host_effect_summary(table, root=tmp_path)
    # seed 0 over kinds: 0.570 (Xeon) to 0.600 (AVX512): 0.030; the two unrecorded AMD runs differ by 0.010
    assert summary.startswith("host effect 0.030 (seed 0 of chapter 4's config on 3 kinds of host: ")
    assert "AMD EPYC (instruction set not recorded) 0.580 to 0.590" in summary
    assert "differ by up to 0.010" in summary
    assert summary.endswith("seed spread (std of 3 `semi3net` seeds on AMD EPYC (instruction set not recorded)) 0.007")
    # a recorded kind's run equal to the last digit to an unrecorded one names the kind it ran as
    _record(check / "chapter-4-seed0-amd-epyc-avx512.json", 0.590, avx512, run="chapter-4")
    again = host_effect_summary(host_effect_table(check, root=tmp_path), root=tmp_path)
    assert ("`results/sketchy-mini/semi3net-seed0.json` (instruction set not recorded) equals the AMD EPYC (AVX512) "
            "run to the last digit, so it ran as that kind") in again
    assert "3 kinds of host: AMD EPYC (AVX512) 0.590, AMD EPYC (instruction set not recorded) 0.580, " in again
    one = host_effect_summary(table[table["host"] == "Intel Xeon (AVX2)"], root=tmp_path)
    assert one.startswith("one kind of host so far (Intel Xeon (AVX2)): no host effect between kinds yet;")
    assert not math.isnan(float(one.rsplit(" ", 1)[1]))


def test_a_cap_check_says_whether_a_capped_host_computed_what_the_host_it_is_capped_to_computed(tmp_path):
    avx2 = {"cpu": "AMD EPYC", "cpu_capability": "AVX2"}
    capped = {**avx2, "cpu_isa": "AVX512", "isa_caps": {"ATEN_CPU_CAPABILITY": "avx2"}}
    history = [{"epoch": 1, "loss_total": 14.312398458781995}, {"epoch": 2, "loss_total": 10.119900562888697}]
    original = tmp_path / "results" / "why-edgemap" / "semi3net-seed3.json"
    _record(original, 0.6283, avx2, seed=3)
    rerun = tmp_path / CAPPED_DIR / "why-edgemap" / "semi3net-seed3.json"
    _record(rerun, 0.6283, capped, seed=3)
    _record(tmp_path / CAPPED_DIR / "why-edgemap" / "no-record-to-match-seed0.json", 0.5, capped)  # passed over
    for path in (original, rerun):
        path.write_text(json.dumps({**json.loads(path.read_text()), "history": history}))
    [check] = cap_checks(tmp_path)
    assert check.identical and check.cpu == "AMD EPYC with AVX512" and check.host == "AMD EPYC (AVX2)"
    assert check.original == "results/why-edgemap/semi3net-seed3.json"
    assert "equal to the record's, to the last digit. So runs capped so pair with that host's" in cap_check_text([check])
    # one epoch's loss differs in its last digit: not the same computation
    rerun.write_text(json.dumps({**json.loads(rerun.read_text()),
                                 "history": [history[0], {"epoch": 2, "loss_total": 10.119900562888698}]}))
    [check] = cap_checks(tmp_path)
    assert not check.identical and check.equal_epochs == 1
    assert "1 of 2 epoch losses equal: not the same computation" in cap_check_text([check])
    assert cap_check_text([]).startswith("No cap check yet")
