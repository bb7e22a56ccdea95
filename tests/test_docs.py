"""The README is the front door: it links every page under docs/, and no relative link in the docs is broken."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> set[Path]:
    """The files a Markdown page links to by relative path (web links and in-page anchors left out)."""
    targets = set()
    for target in LINK.findall(page.read_text()):
        if "://" not in target and not target.startswith("mailto:"):
            targets.add((page.parent / target).resolve())
    return targets


def test_readme_links_every_docs_page():
    pages = {page.resolve() for page in (REPO_ROOT / "docs").rglob("*.md")}
    unlinked = sorted(str(page.relative_to(REPO_ROOT)) for page in pages - relative_links(REPO_ROOT / "README.md"))
    assert unlinked == []


def test_every_relative_link_resolves():
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    broken = {
        str(page.relative_to(REPO_ROOT)): sorted(str(target) for target in relative_links(page) if not target.exists())
        for page in pages
    }
    assert {page: targets for page, targets in broken.items() if targets} == {}


def test_readme_fits_on_about_two_screens():
    assert len((REPO_ROOT / "README.md").read_text().splitlines()) <= 120
