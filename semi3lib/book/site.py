"""Render the book's website offline and refuse to pass a broken one.

``build_site`` writes the generated parts of pages (the table of "Paper vs. this book", from
the study's records: :mod:`semi3lib.study.claims`), runs ``myst build --html --strict`` with the site
template shipped in ``book/site-template`` (installed from the npm registry with ``npm ci``
when needed), then checks ``_build/html``: every page of the table of contents and every image the pages show
must be there. mystmd exits 0 when a page or a downloaded theme is missing, so this check is
what makes the build loud.

The template is ``site.template`` in ``myst.yml``; ``template=`` or ``$SEMI3_SITE_TEMPLATE``
overrides it for one build, e.g. ``book-theme`` (MyST's standard theme, downloaded at build
time, so it needs a network). Command line: ``python -m semi3lib.book.site [--no-strict]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from semi3lib.book.generated import write_blocks
from semi3lib.study.claims import write_page

MYSTMD_PIN = "1.11.0"
MIN_MYSTMD = (1, 9, 0)  # the first mystmd whose site templates may render themselves (build.render)
TEMPLATE_ENV = "SEMI3_SITE_TEMPLATE"
MYST_ENV = "SEMI3_MYST"

# mystmd marks warnings and errors with these; its --strict stops only on errors.
_PROBLEM_MARKS = ("\u26a0", "\u26d4")


class SiteBuildError(RuntimeError):
    """The site could not be built, or was built with pages or figures missing."""


def read_config(root: str | os.PathLike = ".") -> dict[str, Any]:
    path = Path(root) / "myst.yml"
    if not path.is_file():
        raise SiteBuildError(f"no myst.yml in {Path(root).resolve()}")
    return yaml.safe_load(path.read_text()) or {}


def toc_files(config: dict[str, Any]) -> list[str]:
    """The files of the project's table of contents, in reading order."""
    files: list[str] = []

    def walk(entries: Sequence[dict[str, Any]]) -> None:
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("children", []))

    walk(config.get("project", {}).get("toc", []))
    return files


def find_myst() -> list[str]:
    """The ``myst`` command: ``$SEMI3_MYST``, else the one beside this Python, else on PATH."""
    if os.environ.get(MYST_ENV):
        return os.environ[MYST_ENV].split()
    beside = Path(sys.executable).parent / "myst"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("myst")
    if found:
        return [found]
    raise SiteBuildError(
        f"mystmd is not installed: `pip install mystmd=={MYSTMD_PIN}` (it needs Node.js >= 18 on PATH)"
    )


def myst_version(myst: Sequence[str]) -> tuple[int, ...]:
    out = subprocess.run([*myst, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise SiteBuildError(f"could not read the mystmd version from {' '.join(myst)} --version: {out!r}")
    return tuple(int(x) for x in match.groups())


def ensure_template_installed(template_dir: Path) -> None:
    """``npm ci`` the template's locked packages when its node_modules is missing."""
    if (template_dir / "node_modules" / ".package-lock.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SiteBuildError("npm is not on PATH: install Node.js >= 18 (with npm) to build the book")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=template_dir, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SiteBuildError(f"`npm ci` failed in {template_dir}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


@contextmanager
def _site_template(root: Path, config_text: str, configured: str | None, wanted: str) -> Iterator[None]:
    """Build with ``wanted`` as the site template, restoring myst.yml afterwards."""
    if wanted == configured:
        yield
        return
    path = root / "myst.yml"
    config = yaml.safe_load(config_text)
    config.setdefault("site", {})["template"] = wanted
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    try:
        yield
    finally:
        path.write_text(config_text)


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            src = dict(attrs).get("src")
            if src:
                self.sources.append(src)


def _local_file(html_dir: Path, page: Path, src: str) -> Path | None:
    """The file an <img src> points to inside the site, or None for data: and remote URLs."""
    if re.match(r"^(data:|[a-z]+://|//)", src):
        return None
    src = src.split("#")[0].split("?")[0]
    if src.startswith("/"):
        return html_dir / src.lstrip("/")
    return (page.parent / src).resolve()


def check_site(root: str | os.PathLike = ".") -> list[str]:
    """What is missing from ``_build/html``: pages of the table of contents, figures, styles."""
    root = Path(root)
    html_dir = root / "_build" / "html"
    site_config = root / "_build" / "site" / "config.json"
    missing: list[str] = []
    if not (html_dir / "index.html").is_file():
        missing.append("page: index.html (the book's first page)")
    if not site_config.is_file():
        return missing + [f"file: {site_config} (mystmd wrote no site manifest)"]
    manifest = json.loads(site_config.read_text())
    expected_sources = toc_files(read_config(root))
    built_pages = 1  # the index
    for project in manifest.get("projects", []):
        prefix = f"{project['slug']}/" if project.get("slug") else ""
        for page in project.get("pages", []):
            if not page.get("slug"):
                continue  # a part heading
            built_pages += 1
            if not (html_dir / f"{prefix}{page['slug']}" / "index.html").is_file():
                missing.append(f"page: {prefix}{page['slug']}/index.html ({page.get('title', '')})")
    if built_pages < len(expected_sources):
        missing.append(f"pages: myst.yml lists {len(expected_sources)} files but only {built_pages} became pages")
    for page in sorted(html_dir.rglob("*.html")):
        parser = _ImageSources()
        parser.feed(page.read_text(errors="replace"))
        for src in parser.sources:
            target = _local_file(html_dir, page, src)
            if target is not None and not target.is_file():
                missing.append(f"figure: {src} (shown on {page.relative_to(html_dir)})")
    for content in sorted((root / "_build" / "site" / "content").rglob("*.json")):
        for image in _output_images(json.loads(content.read_text())):
            if not (html_dir / "build" / image.lstrip("/")).is_file():
                missing.append(f"figure: build/{image.lstrip('/')} (an output of {content.stem})")
    return sorted(set(missing), key=missing.index)


def _output_images(node: Any) -> Iterator[str]:
    """Paths of the image files mystmd extracted from notebook outputs of one page."""
    if isinstance(node, dict):
        if node.get("type") == "output":
            for mime, value in (node.get("jupyter_data", {}).get("data") or {}).items():
                if mime.startswith("image/") and isinstance(value, dict) and value.get("path"):
                    yield value["path"]
        for child in node.get("children", []):
            yield from _output_images(child)
    elif isinstance(node, list):
        for child in node:
            yield from _output_images(child)


def _problems(output: str) -> list[str]:
    """mystmd's warnings and errors, each once."""
    lines = [re.sub(r"^\s*-\s*", "", line).strip() for line in output.splitlines()]
    found = [line for line in lines if line.startswith(_PROBLEM_MARKS) or line.startswith("warning: ")]
    return list(dict.fromkeys(found))


def build_site(root: str | os.PathLike = ".", strict: bool = True, template: str | None = None) -> Path:
    """Build ``<root>/_build/html`` and return it; raise ``SiteBuildError`` naming what is wrong.

    strict: stop on any mystmd error or warning (a broken cross-reference, an image not
    found) and on a page of the table of contents that does not exist yet. The pages and
    figures of ``_build/html`` are checked either way.
    """
    root = Path(root).resolve()
    config_text = (root / "myst.yml").read_text() if (root / "myst.yml").is_file() else ""
    config = read_config(root)
    write_page(root)  # the generated table of the "Paper vs. this book" page, from the records
    write_blocks(root)  # every <!-- gen:NAME --> block of README.md and book/*.md, from the records
    absent = [f for f in toc_files(config) if not (root / f).is_file()]
    if absent and strict:
        raise SiteBuildError(
            "the book's table of contents (myst.yml) names files that do not exist; execute the "
            "notebooks first (`make book`):\n  - " + "\n  - ".join(absent)
        )
    configured = config.get("site", {}).get("template")
    wanted = template or os.environ.get(TEMPLATE_ENV) or configured or "book-theme"
    template_dir = (root / wanted) if wanted else None
    if template_dir is not None and (template_dir / "template.yml").is_file():
        ensure_template_installed(template_dir)
    myst = find_myst()
    version = myst_version(myst)
    if version < MIN_MYSTMD:
        raise SiteBuildError(
            f"mystmd {'.'.join(map(str, version))} is too old for the offline template; "
            f"`pip install mystmd=={MYSTMD_PIN}`"
        )
    command = [*myst, "build", "--html", *(["--strict"] if strict else [])]
    with _site_template(root, config_text, configured, wanted):
        result = subprocess.run(
            command, cwd=root, capture_output=True, text=True, check=False, env={**os.environ, "CI": "true"}
        )
    output = result.stdout + result.stderr
    problems = _problems(output)
    if result.returncode != 0 or (strict and problems):
        detail = "\n  - ".join(problems) if problems else output[-4000:]
        verdict = f"failed (exit {result.returncode})" if result.returncode else "reported problems (strict build)"
        raise SiteBuildError(f"`{' '.join(command)}` {verdict} in {root}:\n  - {detail}")
    from semi3lib.book.search_page import install_search_page, named_exports

    exports = named_exports(root / "_build")
    install_search_page(root / "_build" / "html", exports.pop("category"), exports)
    missing = check_site(root)
    if missing:
        raise SiteBuildError(
            f"the site in {root / '_build' / 'html'} is incomplete:\n  - " + "\n  - ".join(missing)
        )
    return root / "_build" / "html"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semi3lib.book.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the folder holding myst.yml (default: .)")
    parser.add_argument("--no-strict", dest="strict", action="store_false", help="do not stop on MyST warnings")
    parser.add_argument("--template", help=f"site template for this build (default: myst.yml's, or ${TEMPLATE_ENV})")
    args = parser.parse_args(argv)
    try:
        html = build_site(args.root, strict=args.strict, template=args.template)
    except SiteBuildError as err:
        print(f"site: error: {err}", file=sys.stderr)
        return 1
    print(f"site: {html} (open it through a web server, e.g. `python -m http.server -d {html}`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
