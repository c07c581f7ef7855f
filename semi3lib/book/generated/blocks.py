"""The generated blocks of the pages: a registry of generators, filling, checking and writing blocks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from semi3lib.io import atomic_write_text
from semi3lib.book.generated.inputs import Records

PAGES = ("README.md", "book/*.md")
BLOCK = re.compile(r"<!-- gen:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /gen:(?P=name) -->", re.S)



Generator = Callable[[Records], str]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    """Register ``function`` as the writer of the blocks called ``name``."""

    def register(function: Generator) -> Generator:
        if name in GENERATORS:
            raise ValueError(f"two generators are called {name!r}")
        GENERATORS[name] = function
        return function

    return register


def pages(root: str | Path = ".") -> list[Path]:
    """The pages a reader sees: ``README.md`` and ``book/*.md``."""
    root = Path(root)
    return sorted(p for pattern in PAGES for p in root.glob(pattern) if p.is_file())


def block_names(text: str) -> list[str]:
    return [m["name"] for m in BLOCK.finditer(text)]


def render(text: str, records: Records) -> str:
    """``text`` with every generated block refilled by its generator (each run once per call)."""
    unknown = sorted(set(block_names(text)) - set(GENERATORS))
    if unknown:
        raise KeyError(f"no generator for block(s) {', '.join(unknown)}; known: {', '.join(sorted(GENERATORS))}")
    cache: dict[str, str] = {}

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in cache:
            cache[name] = GENERATORS[name](records).strip("\n") + "\n"
        return f"<!-- gen:{name} -->\n{cache[name]}<!-- /gen:{name} -->"

    return BLOCK.sub(fill, text)


def stale_blocks(root: str | Path = ".") -> list[str]:
    """``page: gen:NAME`` for every block whose text is not its generator's output."""
    root = Path(root)
    records = Records(root)
    stale = []
    for page in pages(root):
        text = page.read_text()
        fresh = dict(_bodies(render(text, records)))
        for name, body in _bodies(text):
            if fresh[name] != body:
                stale.append(f"{page.relative_to(root)}: gen:{name}")
    return stale


def _bodies(text: str) -> list[tuple[str, str]]:
    return [(m["name"], m["body"]) for m in BLOCK.finditer(text)]


def write_blocks(root: str | Path = ".") -> list[Path]:
    """Refresh every generated block of the pages under ``root``; return the pages changed."""
    root = Path(root)
    records = Records(root)
    changed = []
    for page in pages(root):
        text = page.read_text()
        new = render(text, records)
        if new != text:
            atomic_write_text(page, new)
            changed.append(page)
    return changed
