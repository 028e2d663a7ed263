"""docs/reference.md's generated tables equal what fnnkit's registries generate now, and every link in the docs lands.

The tables are written by ``scripts/gen_reference.py``; a backend, format, option or default changed
without regenerating them fails here, naming the block and the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from fnnkit.backends import BACKENDS
from fnnkit.formats import FORMATS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\((?!https?://|mailto:)(?P<target>[^)\s]+)\)")


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_match_the_registries(gen):
    stale = gen.stale_blocks(gen.REFERENCE.read_text(encoding="utf-8"))
    assert not stale, f"docs/reference.md: {stale} differ from the registries; run python scripts/gen_reference.py"


def test_every_backend_format_and_command_has_a_row(gen):
    text = gen.REFERENCE.read_text(encoding="utf-8")
    for name in BACKENDS:
        assert f"| `{name}` |" in text, name
    for name in FORMATS:
        assert f"| `{name}` |" in text, name
    for command in ("train", "export", "bench latency", "bench load", "bench coldstart", "tune", "serve", "data fetch"):
        assert f"### `fnnkit {command}`" in text, command


def test_render_rewrites_only_the_marked_blocks(gen):
    page = "intro\n" + "".join(f"<!-- generated: {n} -->\nold\n<!-- end generated: {n} -->\n" for n in gen.GENERATORS)
    fresh = gen.render(page + "outro\n")
    assert fresh.startswith("intro\n") and fresh.endswith("outro\n") and "\nold\n" not in fresh
    assert gen.render(fresh) == fresh  # regenerating a current page changes nothing
    assert gen.stale_blocks(page) == list(gen.GENERATORS) and gen.stale_blocks(fresh) == []
    with pytest.raises(ValueError, match="unknown \\['nope'\\]"):
        gen.render(page + "<!-- generated: nope -->\n<!-- end generated: nope -->\n")
    with pytest.raises(ValueError, match="missing \\['backends'\\]"):
        gen.render(page.replace("generated: backends", "generated: x"))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands(page):
    """A link to a moved or renamed page, or to a heading that changed, fails here."""
    broken = []
    for match in LINK.finditer(page.read_text()):
        path, _, anchor = match["target"].partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in _anchors(target)):
            broken.append(match["target"])
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"
