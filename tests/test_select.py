"""Selection flags: every documented form, and a one-line SelectionError for every malformed one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from longterm_sync.errors import ExitCode, SelectionError
from longterm_sync.ids import external_id
from longterm_sync.select import (
    Participant,
    Selection,
    parse_selection,
    skipped_table,
)

TZ = ZoneInfo("Europe/Warsaw")
NOW = datetime(2022, 3, 15, 12, 0, tzinfo=TZ)
SALT = "pepper"
ID_A = "a" * 64
ID_B = "b" * 64


def sel(
    user_time: str | None = None,
    external_id_time: str | None = None,
    excel_time: str | None = None,
) -> Selection:
    return parse_selection(user_time, external_id_time, excel_time, salt=SALT, tz=TZ, now=NOW)


@pytest.mark.parametrize("value", ["", " ", ",", ",,", ",,,", ",,,,", " , , , , "])
def test_blank_user_time_means_everyone(value: str) -> None:
    s = sel(user_time=value)
    assert s.participants is None and s.source == "all"
    assert s.start is None and s.stop is None


def test_no_flag_means_everyone() -> None:
    s = sel()
    assert s.is_all and s.source == "all" and not s.warnings


def test_all_in_a_range() -> None:
    s = sel(user_time=",,,2021-12-30T00:00:00,2022-01-31T23:59:59")
    assert s.participants is None
    assert s.start == datetime(2021, 12, 30, tzinfo=TZ)
    assert s.stop == datetime(2022, 1, 31, 23, 59, 59, tzinfo=TZ)


def test_user_time_hashes_locally_with_the_salt() -> None:
    s = sel(user_time="Long_001,Stress_test,1234567,2021-12-30T00:00:00,2022-01-31T23:59:59")
    assert s.source == "user_time"
    assert s.participants is not None and len(s.participants) == 1
    p = s.participants[0]
    assert p.external_id == external_id("Long_001", "Stress_test", "1234567", salt=SALT)
    assert p.external_id != external_id("Long_001", "Stress_test", "1234567")
    assert "Long_001" not in s.describe() and "1234567" not in s.describe()


def test_date_only_stop_includes_the_whole_day() -> None:
    s = sel(external_id_time=f"{ID_A},2022-01-01,2022-01-31")
    assert s.participants == [
        Participant(ID_A, datetime(2022, 1, 1, tzinfo=TZ), datetime(2022, 2, 1, tzinfo=TZ))
    ]


def test_offset_is_kept() -> None:
    s = sel(external_id_time=f"{ID_A},2022-01-01T00:00:00+00:00,")
    assert s.participants is not None
    assert s.participants[0].start == datetime.fromisoformat("2022-01-01T00:00:00+00:00")
    assert s.participants[0].stop is None


def test_priority_excel_over_id_over_user(tmp_path: Path) -> None:
    csv = tmp_path / "u.csv"
    csv.write_text(f"external_id,start_date,stop_date\n{ID_B},2022-01-01,2022-12-31\n")
    s = sel(user_time="a,b,1", external_id_time=ID_A, excel_time=str(csv))
    assert s.source == "excel" and s.participants == [
        Participant(ID_B, datetime(2022, 1, 1, tzinfo=TZ), datetime(2023, 1, 1, tzinfo=TZ))
    ]
    assert any("--excel_time takes priority" in w for w in s.warnings)
    s = sel(user_time="a,b,1", external_id_time=ID_A)
    assert s.source == "external_id" and s.participants == [Participant(ID_A)]
    assert s.warnings == ["--external_id_time takes priority; ignored --user_time"]


def test_blank_id_and_excel_count_as_not_given() -> None:
    s = sel(user_time="a,b,1", external_id_time=" ", excel_time="")
    assert s.source == "user_time" and not s.warnings


# --- malformed forms: one test each -------------------------------------------------------


def _error(**kwargs: Any) -> str:
    with pytest.raises(SelectionError) as info:
        sel(**kwargs)
    assert info.value.exit_code == ExitCode.USAGE
    text = str(info.value)
    assert "\n" not in text
    return text


def test_user_time_wrong_field_count() -> None:
    assert "3 or 5" in _error(user_time="a,b")
    assert "3 or 5" in _error(user_time="a,b,1,2022-01-01")
    assert "3 or 5" in _error(user_time="a,b,1,2022-01-01,2022-01-02,x")


def test_user_time_partial_name() -> None:
    assert "surname missing" in _error(user_time="a,,1")
    assert "phone missing" in _error(user_time="a,b,,2022-01-01,2022-01-02")


def test_user_time_bad_start() -> None:
    assert "start '2022-13-01'" in _error(user_time=",,,2022-13-01,2022-12-01")


def test_user_time_bad_stop() -> None:
    assert "stop 'yesterday'" in _error(user_time="a,b,1,2022-01-01,yesterday")


def test_start_after_stop() -> None:
    assert "not before stop" in _error(user_time=",,,2022-02-01,2022-01-01T00:00")
    assert "not before stop" in _error(external_id_time=f"{ID_A},2022-02-01,2022-01-01T00:00")


def test_start_after_stop_quotes_what_was_typed(tmp_path: Path) -> None:
    """Not the whole-day bound a date-only stop becomes (2022-01-02T00:00:00+01:00)."""
    message = _error(user_time=",,,2022-02-01, 2022-01-01")
    assert message.endswith("start '2022-02-01' is not before stop '2022-01-01'")
    message = _error(external_id_time=f"{ID_A},2022-01-02T12:00,2022-01-01")
    assert "start '2022-01-02T12:00' is not before stop '2022-01-01'" in message
    path = tmp_path / "users.csv"
    path.write_text(f"{HEADER}{ID_A},2022-05-01,2022-01-01\n")
    assert "row 2: start '2022-05-01' is not before stop '2022-01-01'" in _error(
        excel_time=str(path)
    )


def test_external_id_wrong_field_count() -> None:
    assert "1 or 3" in _error(external_id_time=f"{ID_A},2022-01-01")


def test_external_id_empty_with_range() -> None:
    assert "external_id is empty" in _error(external_id_time=",2022-01-01,2022-02-01")


def test_external_id_with_spaces() -> None:
    assert "not an external_id" in _error(external_id_time="abc def")


def test_external_id_bad_date() -> None:
    assert "start '2022-02-30'" in _error(external_id_time=f"{ID_A},2022-02-30,")


def test_excel_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _error(excel_time=str(tmp_path / "nope.xlsx"))


HEADER = "external_id,start_date,stop_date\n"
BAD_FILES = {
    "unsupported_type": ("users.json", "[]", "unsupported file type"),
    "unreadable_xlsx": ("users.xlsx", "this is not a zip file", "is not really a .xlsx workbook"),
    "csv_renamed_xlsx": ("users.xlsx", f"{HEADER}{ID_A},,\n", "(it is text, perhaps CSV)"),
    "zip_that_is_no_workbook": ("users.xlsx", "", "could not be read as a .xlsx workbook"),
    "empty_csv": ("users.csv", "", "is empty"),
    "header_only": ("users.csv", HEADER, "lists no participants"),
    "missing_columns": (
        "users.csv",
        f"id,start\n{ID_A},2022-01-01\n",
        "lacks column(s) external_id, start_date, stop_date (found: id, start)",
    ),
    "bad_date_names_the_row": (
        "users.csv",
        f"{HEADER}{ID_A},2022-01-01,2022-12-31\n{ID_B},soon,\n",
        "row 3: start_date 'soon'",
    ),
    "row_without_id": ("users.csv", f"{HEADER},2022-01-01,2022-12-31\n", "row 2: no external_id"),
    "row_start_after_stop": ("users.csv", f"{HEADER}{ID_A},2022-05-01,2022-01-01\n", "row 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_excel_malformed_file(tmp_path: Path, case: str) -> None:
    name, content, expected = BAD_FILES[case]
    path = tmp_path / name
    if case == "zip_that_is_no_workbook":
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
    else:
        path.write_text(content)
    message = _error(excel_time=str(path))
    assert expected in message
    assert "openpyxl" not in message and "zip" not in message.lower().replace(".zip", "")


def test_semicolon_csv_from_a_polish_or_norwegian_excel(tmp_path: Path) -> None:
    """Excel's CSV export where the comma is the decimal mark: ';' separators, a BOM."""
    path = tmp_path / "users.csv"
    text = f"external_id;start_date;stop_date\r\n{ID_A};2022-03-01;2022-03-31\r\n{ID_B};;\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    s = sel(excel_time=str(path))
    assert [p.external_id for p in s.participants or []] == [ID_A, ID_B]
    assert s.participants and s.participants[0].start == datetime(2022, 3, 1, tzinfo=TZ)


def test_csv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes("name,surname,phone,start_date,stop_date\nJ\xf3zef,B,1,,\n".encode("latin-1"))
    assert "is not UTF-8 text" in _error(excel_time=str(path))


# --- spreadsheets -------------------------------------------------------------------------


def test_xlsx_with_dates_skips_inactive_rows(tmp_path: Path) -> None:
    path = tmp_path / "users.xlsx"
    ids = [c * 64 for c in "abcde"]
    frame = pd.DataFrame(
        {
            "external_id": ids,
            "start_date": [
                datetime(2022, 1, 1),
                datetime(2022, 4, 1),  # future
                datetime(2021, 1, 1),
                None,
                "2022-03-15",
            ],
            "stop_date": [
                datetime(2022, 6, 30),
                datetime(2022, 6, 30),
                datetime(2022, 3, 14),  # ended yesterday (whole day included)
                None,
                datetime(2022, 3, 15),  # ends today: still active
            ],
        }
    )
    frame.to_excel(path, index=False)
    s = sel(excel_time=str(path))
    assert s.source == "excel"
    assert s.participants is not None
    assert [p.external_id for p in s.participants] == [ids[0], ids[3], ids[4]]
    assert s.participants[0].stop == datetime(2022, 7, 1, tzinfo=TZ)
    assert s.participants[1] == Participant(ids[3], None, None)
    assert [(k.row, k.reason) for k in s.skipped] == [
        (3, "starts in the future"),
        (4, "ended in the past"),
    ]
    table = skipped_table(s, TZ)
    assert table[0] == "skipped 2 participants not active at 2022-03-15 12:00:"
    assert table[1].split() == ["row", "external_id", "start_date", "stop_date", "reason"]
    assert ids[1] in table[2] and "starts in the future" in table[2]
    assert "2021-01-01 00:00" in table[3] and "2022-03-15 00:00" in table[3]
    assert skipped_table(sel(external_id_time=ID_A)) == []


def test_csv_with_names_is_hashed_and_duplicates_warned(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "name,surname,phone,start_date,stop_date\n"
        "Ala,Kot,600100200,2022-01-01,\n"
        ",,,,\n"
        "Ala,Kot,600100200,2022-02-01,\n"
    )
    s = sel(excel_time=str(path))
    ext = external_id("Ala", "Kot", "600100200", salt=SALT)
    assert s.participants == [Participant(ext, datetime(2022, 1, 1, tzinfo=TZ), None)]
    assert len(s.warnings) == 1 and "row 4" in s.warnings[0] and "Ala" not in s.warnings[0]
