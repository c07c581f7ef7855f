"""Install the project and its pinned dependencies into the running Python (a venv).

Uses uv, which installs this environment (about 6 GB unpacked, mostly torch's CUDA
libraries) in 78 s on 2 cores where pip took 4 min 53 s, and falls back to pip if uv cannot
be installed or fails. Bytecode is compiled at install time, as pip does: without it, every
notebook kernel would recompile torch's and pandas' modules where PYTHONDONTWRITEBYTECODE
is set (it is on these machines), about 10 s a notebook. uv reads no pip configuration, so the package
sources pip is configured with (index URLs, find-links, constraints) are passed on to it.

Usage (what ``make env`` runs): ``.venv/bin/python tools/install_env.py [--pip]``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

UV = "uv==0.13.8"
REPO = Path(__file__).resolve().parents[1]
TARGET = [str(REPO) + "[dev]"]


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], check=check, text=True, capture_output=not check)


def pip_sources() -> list[str]:
    """uv flags for the sources in ``pip config list`` (files and PIP_* variables)."""
    flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
             "constraint": "--constraint"}
    listing = pip("config", "list", check=False).stdout
    pairs: list[tuple[str, str]] = []
    for line in listing.splitlines():  # e.g. global.extra-index-url='file:///a file:///b'
        key, _, value = line.partition("=")
        option = key.rpartition(".")[2]
        for item in value.strip("'\"").split() if option in flags else []:
            if (flags[option], item) not in pairs:
                pairs.append((flags[option], item))
    return [arg for pair in pairs for arg in pair]


def install_with_uv() -> bool:
    if pip("install", "-q", UV, check=False).returncode != 0:
        print(f"could not install {UV}; using pip", file=sys.stderr)
        return False
    cmd = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", sys.executable,
           "--index-strategy", "unsafe-best-match", "--compile-bytecode", *pip_sources(), "--editable", *TARGET]
    if subprocess.run(cmd).returncode != 0:
        print("uv failed (see above); using pip", file=sys.stderr)
        return False
    return True


def main() -> int:
    started = time.perf_counter()
    if "--pip" in sys.argv[1:] or not install_with_uv():
        pip("install", "-q", "--editable", *TARGET)
    print(f"environment installed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
