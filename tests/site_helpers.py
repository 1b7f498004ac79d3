"""Shared by the report tests: running ``longterm report`` and reading the site it wrote."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from clitools import Result, run_cli
from fixtures_sandbox import SANDBOX_TODAY, SandboxInfo

UNTIL = SANDBOX_TODAY
DAYS = "10"


def report(info: SandboxInfo, site: Path, *flags: str) -> Result:
    return run_cli(
        [
            "report",
            "--config",
            info.config,
            "--server",
            "sandbox",
            "--html",
            str(site),
            "--until",
            UNTIL,
            "--days",
            DAYS,
            *flags,
        ],
        timeout=600,
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []  # (tag.attr, value)
        self.cells: dict[str, list[tuple[str, str, str]]] = {}  # id -> (day, kind, text)
        self._row: str | None = None
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("href", "src"):
            if key in a:
                self.refs.append((f"{tag}.{key}", a[key]))
        if tag == "tr" and "data-id" in a:
            self._row = a["data-id"]
            self.cells[self._row] = []
        if tag == "td" and self._row is not None and "data-day" in a:
            kinds = [c[2:] for c in a.get("class", "").split() if c.startswith("k-")]
            day = a["data-day"]
            text = a.get("title", "")
            assert text.startswith(f"{day}: "), text
            self.cells[self._row].append((day, kinds[0], text[len(day) + 2 :]))
        if tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def css_colours(page: _Collector) -> dict[str, str]:
    """``.k-<state> { background: #RRGGBB; }`` rules of the page's inline CSS."""
    css = "".join(page.styles)
    return {m[0]: m[1].upper() for m in re.findall(r"\.k-(\w+) \{ background: #(\w{6}); \}", css)}


def broken_references(site: Path) -> list[str]:
    """Every href/src of every page must be relative and name a file inside the site."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        for where, ref in parse(page).refs:
            parts = urlsplit(ref)
            if ref.startswith("data:"):
                continue
            if parts.scheme or parts.netloc or ref.startswith("/"):
                problems.append(f"{page.relative_to(site)} {where}: not relative: {ref}")
                continue
            if not parts.path:  # a fragment link within the page
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_file():
                problems.append(f"{page.relative_to(site)} {where}: missing {ref}")
            elif site.resolve() not in target.parents:
                problems.append(f"{page.relative_to(site)} {where}: outside the site: {ref}")
    return problems
