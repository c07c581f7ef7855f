"""``make lab``: JupyterLab from the project's environment, with the ``py:percent`` notebooks
opening as notebooks.

The settings override (``jupyterlab-overrides.json``: jupytext's "Jupytext Notebook" is the
default viewer of ``.py`` files) is installed into the environment's JupyterLab
application folder, ``<sys.prefix>/share/jupyter/lab/settings/overrides.json``, by ``make env``
and again by every launch, so nothing is configured by hand. Saving from JupyterLab writes the
``.py`` file (jupytext's contents manager); no ``.ipynb`` is created. Opening and saving a
notebook without an edit leaves the file byte for byte as it was: the server's contents manager
is :class:`ProjectContentsManager` (so JupyterLab does not mark a notebook modified on opening
it), and the project's ``jupytext.toml`` keeps jupytext's version and filters out of the
``.py`` header.

``python -m semi3lib.interactive.lab [--port N] [--no-browser] [--token T] [extra jupyter args]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from jupytext.async_contentsmanager import AsyncTextFileContentsManager

from semi3lib.interactive import find_project_root

CONTENTS_MANAGER = "semi3lib.interactive.lab.ProjectContentsManager"  # the server imports it by name
PROJECT_KERNEL = "python3"  # the kernelspec `make env` installs: ipykernel in this environment

OVERRIDES = Path(__file__).with_name("jupyterlab-overrides.json")


def settings_file(prefix: str | os.PathLike = sys.prefix) -> Path:
    """Where JupyterLab reads its application-level settings overrides."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install_settings(prefix: str | os.PathLike = sys.prefix) -> Path:
    """Merge the project's overrides into ``overrides.json`` (other plugins' keys are kept)."""
    target = settings_file(prefix)
    current = json.loads(target.read_text()) if target.is_file() else {}
    for plugin, values in json.loads(OVERRIDES.read_text()).items():
        merged = dict(current.get(plugin, {}))
        for key, value in values.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        current[plugin] = merged
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(current, indent=2) + "\n")
    return target


def kernel_language_info() -> dict[str, Any]:
    """What the project's kernel reports as ``language_info``: ipykernel's, for the Python that
    runs this server (the kernel runs the same environment's Python)."""
    from ipykernel.ipkernel import IPythonKernel

    return copy.deepcopy(IPythonKernel.language_info)


def add_kernel_language_info(notebook: Any) -> Any:
    """Give a notebook of the project's kernel that kernel's ``language_info`` when it has none
    (another kernel's notebook, or one that has it, is left as it is); returns the notebook."""
    metadata = notebook["metadata"]
    if metadata.get("kernelspec", {}).get("name") == PROJECT_KERNEL and "language_info" not in metadata:
        metadata["language_info"] = kernel_language_info()
    return notebook


class ProjectContentsManager(AsyncTextFileContentsManager):
    """jupytext's contents manager (a ``.py`` notebook opens as a notebook and saves as ``.py``);
    a text notebook is served with its kernel's ``language_info``.

    Why: JupyterLab marks a notebook modified the moment it opens when its metadata has no
    ``language_info`` (it fills in a placeholder, then the kernel's), and a ``.py`` notebook never
    stores it (it names the machine's Python version; jupytext leaves it out of the file). Served
    with the value the kernel will report, a notebook opens unmodified. Saving is unchanged."""

    async def get(self, path: str, content: bool = True, type: str | None = None, format: str | None = None,
                  **kwargs: Any) -> dict[str, Any]:
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook" and not path.endswith(".ipynb") and model.get("content"):
            add_kernel_language_info(model["content"])
        return model


def lab_command(root: Path, port: int | None = None, open_browser: bool = True, token: str | None = None,
                extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line: this environment's Python, bound to 127.0.0.1,
    serving the project root with the project's contents manager and opening ``notebooks/``;
    ``--allow-root`` when run as root."""
    command = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}",
               f"--ServerApp.contents_manager_class={CONTENTS_MANAGER}", "--LabApp.default_url=/lab/tree/notebooks"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not open_browser:
        command.append("--no-browser")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    return [*command, *extra]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semi3lib.interactive.lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--token", help="the server's token (default: JupyterLab makes one)")
    parser.add_argument("--install-settings", action="store_true", help="only install the settings override")
    args, extra = parser.parse_known_args(argv)
    target = install_settings()
    if args.install_settings:
        print(f"lab: settings override installed in {target}")
        return 0
    root = find_project_root() or find_project_root(Path(__file__).resolve().parents[2])
    if root is None:
        print("lab: error: run from the project (no folder with notebooks/ and configs/ found)", file=sys.stderr)
        return 2
    command = lab_command(root, args.port, not args.no_browser, args.token, extra)
    os.chdir(root)
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
