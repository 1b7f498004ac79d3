"""The report site in a real browser: Debian's headless ``chromium`` loads every page from
disk (file://) and reports console errors, failed requests and broken images; a screenshot of
the overview is checked for its size and for content (pixel variance, not a blank page).

Skipped only where no chromium binary exists (``.ci/run`` installs it). With
``LONGTERM_UPDATE_DOCS=1`` the screenshot also replaces docs/report-overview.png, the
README's picture.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis_helpers import shared_study
from browser import Browser, chromium_binary
from clitools import REPO
from fixtures_sandbox import SandboxInfo
from site_helpers import broken_references, report

BINARY = chromium_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="no chromium binary (apt-get install chromium; .ci/run does)"
)
WIDTH, HEIGHT = 1100, 720
DOCS_SHOT = REPO / "docs" / "report-overview.png"


@pytest.fixture(scope="module")
def site(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser") / "site"
    aliases = folder.parent / "aliases.csv"
    ids = [p.external_id for p in shared_study().participants]
    aliases.write_text("".join(f"{ext},P{i:02d}\n" for i, ext in enumerate(ids[:2], 1)))
    done = report(sandbox, folder, "--aliases", str(aliases), "--title", "Sandbox study")
    assert done.code == 0, done.err
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert BINARY is not None
    b = Browser(BINARY, width=WIDTH, height=HEIGHT)
    try:
        yield b
    finally:
        b.close()


def test_every_page_loads_clean(site: Path, browser: Browser) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 6
    images = 0
    for page in pages:
        loaded = browser.load(page)
        assert loaded.problems == [], (page.name, loaded.problems)
        assert loaded.requests and all(url.startswith("file://") for url in loaded.requests)
        assert loaded.title
        images += loaded.images
    assert images > 0  # the participants' figure thumbnails, every one decoded
    assert broken_references(site) == []


def test_overview_screenshot_has_content(site: Path, browser: Browser, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    shot = tmp_path / "overview.png"
    loaded = browser.load(site / "index.html", screenshot=shot)
    assert loaded.problems == []
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        stat = ImageStat.Stat(image.convert("L"))
        colours = len(image.convert("RGB").getcolors(1 << 20) or [])
    assert stat.var[0] > 500, stat.var  # a blank or single-colour page is near 0
    assert colours > 50  # text, the legend and the heatmap's states
    if os.environ.get("LONGTERM_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS_SHOT)
    with Image.open(DOCS_SHOT) as readme_picture:  # the README's picture is this step's output
        assert readme_picture.size == (WIDTH, HEIGHT)
    assert DOCS_SHOT.stat().st_size < 300_000
