"""``longterm report`` end to end against the sandbox: the site's heatmap against
user_activity's own table and workbook, the figure cache, aliases, personal data, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from backup_helpers import backup_json, participant_ids, post
from clitools import run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.analysis.devices import device_spans
from longterm_sync.render.activity import COLOURS
from longterm_sync.report.attention import alerts_for
from longterm_sync.report.study import ParticipantData, ReadOptions, reduce_item
from longterm_sync.select import Selection
from report_helpers import watch_result
from site_helpers import DAYS, UNTIL, broken_references, css_colours, parse, report

TZ = ZoneInfo("Europe/Warsaw")


@pytest.fixture(scope="module")
def downloaded(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """download-results and download-schedule of the shared study, as a user keeps them."""
    folder = tmp_path_factory.mktemp("downloaded")
    for command in ("download-results", "download-schedule"):
        done = run_cli(
            [
                command,
                "--config",
                sandbox.config,
                "--server",
                "sandbox",
                "--output-dir",
                str(folder),
                # schedules only: the default mode also mirrors videos into ./video_from_server
                *(["--mode=json"] if command == "download-schedule" else []),
            ]
        )
        assert done.code == 0, done.err
    return folder


@pytest.fixture(scope="module")
def server_site(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site") / "site"
    done = report(sandbox, site, "--json")
    assert done.code == 0, done.err
    summary = json.loads(done.out)
    assert summary["counts"]["participants"] == 5
    assert summary["counts"]["pages"] == 6
    assert not list(site.glob(".source-*")), "the download folder is removed"
    return site


def test_heatmap_cells_are_user_activitys(
    sandbox: SandboxInfo, server_site: Path, tmp_path: Path
) -> None:
    """Same text and same state in every cell as user_activity's CSV, same colour as its
    workbook's fill, for the same results and days."""
    done = run_cli(
        [
            "user_activity",
            "--config",
            sandbox.config,
            "--server",
            "sandbox",
            "--output-dir",
            str(tmp_path),
            "--until",
            UNTIL,
            "--report_days",
            DAYS,
            "--xlsx",
        ]
    )
    assert done.code == 0, done.err
    with (tmp_path / "user_activity.csv").open(encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    header, rows = table[0], table[1:]
    book = openpyxl.load_workbook(tmp_path / "user_activity.xlsx")
    sheet = book["activity"]
    page = parse(server_site / "index.html")
    assert set(page.cells) == {row[1] for row in rows}
    colours = css_colours(page)
    assert colours == {kind: colour for kind, (colour, _) in COLOURS.items()}
    checked = 0
    for r, row in enumerate(rows, start=2):
        cells = page.cells[row[1]]
        assert [day for day, _, _ in cells] == header[2:]
        assert [text for _, _, text in cells] == row[2:]
        for c, (_, kind, _) in enumerate(cells, start=3):
            fill = sheet.cell(row=r, column=c).fill.start_color.rgb
            assert fill[-6:].upper() == colours[kind], (row[1], c)
            checked += 1
    assert checked == 5 * int(DAYS)
    kinds = {kind for cells in page.cells.values() for _, kind, _ in cells}
    assert {"ok", "face_down", "none"} <= kinds, kinds


def test_a_folder_gives_the_same_site_and_a_rebuild_redraws_only_changed_viewings(
    sandbox: SandboxInfo, downloaded: Path, server_site: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "latest"
    shutil.copytree(downloaded, folder)
    site = tmp_path / "site"
    first = report(sandbox, site, "--from", str(folder), "--json")
    assert first.code == 0, first.err
    counts = json.loads(first.out)["counts"]
    assert parse(site / "index.html").cells == parse(server_site / "index.html").cells
    drawn = counts["figures drawn"]
    assert drawn > 0 and counts.get("figures reused", 0) == 0
    figures = sorted(p.name for p in (site / "figures").iterdir())
    assert len(figures) == 2 * drawn  # full size and thumbnail

    again = report(sandbox, site, "--from", str(folder), "--json")
    counts = json.loads(again.out)["counts"]
    assert (counts["figures drawn"], counts["figures reused"]) == (0, drawn)
    assert counts["results from the row cache"] == counts["viewings"]  # none parsed again
    assert sorted(p.name for p in (site / "figures").iterdir()) == figures

    # a new comment on a video (download-results attaches it to every viewing of that video)
    # redraws nothing; a result whose content changed is drawn again, its old figure removed
    for path in _results_files(folder):  # a participant whose first viewing has a figure
        lines = path.read_text(encoding="utf-8").splitlines()
        items = [json.loads(line.rstrip(",")) for line in lines[1:-1]]
        if items and items[0]["result"]["accelerometer_data"]["z"]:
            break
    for item in items:
        item["result"]["user_feedback"] = [
            {"video": item["result"]["video"], "date": item["date"], "comment": "later comment"}
        ]
    items[0]["result"]["accelerometer_data"]["z"][-1] = -0.5
    body = ",\n".join(json.dumps(item, ensure_ascii=False) for item in items)
    path.write_text(f"[\n{body}\n]\n", encoding="utf-8")
    third = report(sandbox, site, "--from", str(folder), "--json")
    counts = json.loads(third.out)["counts"]
    assert (counts["figures drawn"], counts["figures reused"]) == (1, drawn - 1)
    assert counts["figures removed"] == 2
    assert len(list((site / "figures").iterdir())) == 2 * drawn
    assert broken_references(site) == []


def _results_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.glob("results_*.json") if "feedback" not in p.name and "all" not in p.name
    )


def test_every_link_and_image_resolves_inside_the_site(server_site: Path) -> None:
    assert broken_references(server_site) == []
    pages = sorted(p.name for p in (server_site / "p").iterdir())
    assert len(pages) == 5
    index = parse(server_site / "index.html")
    linked = {ref.split("/")[-1] for where, ref in index.refs if ref.startswith("p/")}
    assert linked == set(pages)
    images = [
        ref for p in (server_site / "p").iterdir() for w, ref in parse(p).refs if w == "img.src"
    ]
    assert images and all(ref.startswith("../figures/") for ref in images)
    text = "".join(p.read_text() for p in server_site.rglob("*.html"))
    for remote in ("http://", "https://", "<script", "@import", "url("):
        assert remote not in text, remote


def test_aliases_show_and_names_and_phones_never_do(
    sandbox: SandboxInfo, downloaded: Path, tmp_path: Path
) -> None:
    with (sandbox.study_dir / "users.csv").open(encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    assert people
    aliases = tmp_path / "aliases.csv"
    first = sorted(p.name[len("schedule_") : -5] for p in downloaded.glob("schedule_*.json"))[0]
    aliases.write_text(f"external_id,alias\n{first},Ward 3 / bed <7>\n", encoding="utf-8")
    site = tmp_path / "site"
    done = report(
        sandbox, site, "--from", str(downloaded), "--aliases", str(aliases), "--no-figures"
    )
    assert done.code == 0, done.err
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Ward 3 / bed &lt;7&gt;" in index  # text, never markup
    page = (site / "p" / f"{first}.html").read_text(encoding="utf-8")
    assert "Ward 3 / bed &lt;7&gt;" in page
    everything = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    for person in people:
        for key in ("name", "surname", "phone"):
            value = person.get(key)
            if value:
                assert value not in everything, key


def _rows(*items: dict) -> list:
    options = ReadOptions(tz=TZ, selection=Selection(None))
    rows = [reduce_item({"external_id": "a1", **item}, options) for item in items]
    assert all(r is not None for r in rows)
    return rows


def _at(day: int, hour: int = 18) -> datetime:
    return datetime(2024, 3, day, hour, tzinfo=TZ)


FACE_DOWN_Z = [0.9] * 60 + [-0.95] * 1140


def test_needs_attention_rules() -> None:
    p = ParticipantData("a1")
    p.viewings = _rows(
        watch_result(_at(9), watched_s=60, z=FACE_DOWN_Z),
        watch_result(_at(10), watched_s=60, z=FACE_DOWN_Z),
        watch_result(_at(11), watched_s=40),
        watch_result(_at(12), watched_s=45),
    )
    until = date(2024, 3, 15)
    kinds = {a.kind: a.text for a in alerts_for(p, until, 3, TZ)}
    assert kinds["silent"] == "no viewing for 3 days (last 2024-03-12)"
    assert kinds["face_down"].startswith("2 viewings face down")
    assert kinds["sped_up"].startswith("2 viewings shorter")
    assert "silent" not in {a.kind for a in alerts_for(p, until, 4, TZ)}
    # one face-down viewing is not a pattern; older than a week does not count
    assert "face_down" not in {a.kind for a in alerts_for(p, until + timedelta(days=6), 9, TZ)}
    # a phone change this week, and a missing-video report
    rows = [
        {"external_id": "a1", "date": f"2024-03-{d:02d}T18:00", "device_brand": b}
        for d, b in ((1, "Apple"), (2, "Apple"), (13, "google"))
    ]
    p.devices = device_spans(rows)
    p.missing = [{"reported_at": "2024-03-14T08:15:00+01:00", "video": "clip_C.mp4"}]
    kinds = {a.kind: a.text for a in alerts_for(p, until, 3, TZ)}
    assert kinds["new_device"] == "phone changed 2024-03-13: Apple -> google"
    assert kinds["missing_video"] == "1 missing-video report(s): clip_C.mp4"


def test_bad_input_is_one_line(sandbox: SandboxInfo, downloaded: Path, tmp_path: Path) -> None:
    missing = report(sandbox, tmp_path / "s1", "--from", str(tmp_path / "nowhere"))
    assert missing.code == 2
    assert "is not a folder" in missing.one_line_error()
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("a1,one,two\n")
    bad = report(sandbox, tmp_path / "s2", "--from", str(downloaded), "--aliases", str(aliases))
    assert bad.code == 2
    assert "aliases.csv:1: expected 'external_id,alias'" in bad.one_line_error()
    assert not (tmp_path / "s2" / "index.html").exists()
    # a truncated results file: named with its line; what was read before it is shown
    folder = tmp_path / "cut"
    shutil.copytree(downloaded, folder)
    path = _results_files(folder)[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    cut = report(sandbox, tmp_path / "s3", "--from", str(folder), "--no-figures")
    assert cut.code == 1, cut.err
    assert "Traceback" not in cut.err
    assert f"{path}:" in cut.out and "truncated" in cut.out
    index = (tmp_path / "s3" / "index.html").read_text()
    assert "Could not be read" in index and path.name in index


def test_backup_report_rebuilds_the_site_drawing_only_new_viewings(
    sandbox_factory: object, tmp_path: Path
) -> None:
    info: SandboxInfo = sandbox_factory(  # type: ignore[operator]
        "--users", "2", "--days", "3", "--samples", "100", "--video-mb", "0.05",
        "--seed", "3", "--today", "2024-03-15",
    )  # fmt: skip
    dest = tmp_path / "backup"
    first = backup_json(info, dest, "--no-videos", "--report")
    assert first["ok"], first["failures"]
    (site,) = [p for p in first["parts"] if p["command"] == "report"]
    drawn, viewings = site["counts"]["figures drawn"], site["counts"]["viewings"]
    assert drawn > 0
    assert first["details"]["report"] == str(dest / "report" / "index.html")
    assert broken_references(dest / "report") == []

    item = watch_result(datetime(2024, 3, 15, 18, tzinfo=TZ), watched_s=60)
    item["result"]["gyroscope_data"] = item["result"]["accelerometer_data"]
    post(info, participant_ids(info)[0], "watch-results", item)
    second = backup_json(info, dest, "--no-videos", "--report")
    assert second["ok"], second["failures"]
    (site,) = [p for p in second["parts"] if p["command"] == "report"]
    assert site["counts"]["viewings"] == viewings + 1
    assert (site["counts"]["figures drawn"], site["counts"]["figures reused"]) == (1, drawn)
    verified = run_cli(["backup", "verify", "--dest_location", str(dest)])
    assert verified.code == 0, verified.out + verified.err
