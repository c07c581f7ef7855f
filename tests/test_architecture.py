"""The package's layers: written down once (pyproject.toml's import-linter contract), enforced by
``lint-imports`` in ``make test``, and pictured on the Architecture page, which names every module."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "architecture.md"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CROSS_CUTTING = {"config.py", "io.py", "paths.py", "__init__.py"}


def contract_layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path):
    shutil.copytree(REPO / "semi3lib", tmp_path / "semi3lib", ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    models = tmp_path / "semi3lib" / "models" / "losses.py"
    models.write_text(models.read_text() + "\nfrom semi3lib.engine import train  # an upward import\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "semi3lib.models.losses -> semi3lib.engine.train" in result.stdout


def test_the_top_of_the_package_holds_the_layers_and_the_cross_cutting_modules_only():
    top = REPO / "semi3lib"
    modules = {p.name for p in top.glob("*.py")}
    assert modules <= CROSS_CUTTING, f"a module at the top of semi3lib: {sorted(modules - CROSS_CUTTING)}"
    layers = {name.strip().removeprefix("semi3lib.") for line in contract_layers() for name in line.split("|")}
    folders = {p.name for p in top.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders | {"config", "io", "paths"} == layers


def test_the_architecture_page_shows_the_contract_and_names_every_module():
    text = PAGE.read_text()
    picture = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    drawn = [line.split("#")[0].strip() for line in picture.splitlines() if line.split("#")[0].strip()]
    assert drawn == [" | ".join(n.strip().removeprefix("semi3lib.") for n in line.split("|"))
                     for line in contract_layers()]
    named = set(re.findall(r"`(semi3lib/[\w/]+\.py)`", text))
    modules = {str(p.relative_to(REPO)) for p in (REPO / "semi3lib").rglob("*.py")
               if p.name != "__init__.py" and "node_modules" not in p.parts}
    assert not modules - named, f"modules the page does not name: {sorted(modules - named)}"
    missing = sorted(name for name in named if not (REPO / name).is_file())
    assert not missing, f"the page names modules that do not exist: {missing}"
