"""One `semi3 book run` per build folder: a second one is refused before any notebook runs, so
two runs never write the same executed notebooks, results and figures."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from semi3lib.book.runner import run_book
from semi3lib.io import OutputError


def test_a_second_book_run_into_the_same_build_folder_is_refused_before_it_starts(tmp_path):
    out = tmp_path / "_build"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from semi3lib.io import folder_lock
        with folder_lock({str(out)!r}, what="build folder"):
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        ran = []
        with pytest.raises(OutputError, match=rf"build folder {out} is in use: another semi3 book run "
                                              rf"\(process {holder.pid}\) writes to it"):
            run_book("smoke", only=["01_data"], out=out, log=ran.append)
        assert ran == [] and not (out / "executed").exists()
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
