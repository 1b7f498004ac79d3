"""Reading a participants spreadsheet (.xlsx, .xls or CSV: ``--excel_time``'s, and
prepare_schedule's participants file) into a data frame, every failure one line naming the
file; what the rows mean is the caller's (:mod:`.select`, :mod:`.prepare.participants`).

Kept apart from the selection rules so that reading a table (pandas, openpyxl, the BOM and
separator habits of Excel's exports) and deciding who a run covers change independently.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

from .errors import LongtermError, SelectionError

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
CSV_SUFFIXES = (".csv", ".txt")


_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls (Excel 97-2003); .xlsx/.xlsm are zip files


def read_table(
    path: Path, *, label: str = "--excel_time", error: type[LongtermError] = SelectionError
) -> Any:
    """The spreadsheet as a pandas DataFrame of objects; every failure is one ``error`` of
    ours, its line starting with ``label`` (the flag or the kind of file it was given as).

    A CSV may be separated by ``;`` (Excel's export where the comma is the decimal mark, e.g.
    Polish and Norwegian locales) and may start with Excel's UTF-8 byte order mark.
    """
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES + CSV_SUFFIXES:
        raise error(
            f"{label}: {path.name}: unsupported file type {suffix or '(none)'!r}",
            hint="use .xlsx or .csv",
        )
    if not path.is_file():
        raise error(f"{label}: {path} does not exist")
    try:
        if suffix in EXCEL_SUFFIXES:
            _check_workbook(path, suffix, label, error)
            return pd.read_excel(path, dtype=object)
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            sep=_csv_separator(path),
            encoding="utf-8-sig",
        )
    except LongtermError:
        raise
    except pd.errors.EmptyDataError:
        raise error(f"{label}: {path} is empty") from None
    except UnicodeDecodeError:
        raise error(
            f"{label}: {path.name} is not UTF-8 text",
            hint='save it from Excel as "CSV UTF-8", or as .xlsx',
        ) from None
    except OSError as exc:
        raise error(f"{label}: cannot read {path}: {exc.strerror}") from None
    except Exception:  # pandas/openpyxl raise many types for a corrupt file; their text
        # names their internals, not the user's file
        raise error(
            f"{label}: {path.name} could not be read as a {_kind(suffix)}",
            hint="open it in Excel and save it again as .xlsx or CSV UTF-8",
        ) from None


def _kind(suffix: str) -> str:
    return "CSV file" if suffix in CSV_SUFFIXES else f"{suffix} workbook"


def _check_workbook(path: Path, suffix: str, label: str, error: type[LongtermError]) -> None:
    """A file named .xlsx that is not one (a CSV or HTML export renamed) is named as such."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    ok = head.startswith(_OLE_MAGIC) if suffix == ".xls" else zipfile.is_zipfile(path)
    if ok:
        return
    text = b"\0" not in head
    raise error(
        f"{label}: {path.name} is not really a {suffix} workbook"
        + (" (it is text, perhaps CSV)" if text else ""),
        hint="rename a CSV to .csv, or save the file from Excel as .xlsx",
    )


def _csv_separator(path: Path) -> str:
    """``;`` when the header line has more semicolons than commas, else ``,``."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    return ";" if header.count(";") > header.count(",") else ","


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if type(value).__name__ in {"NaTType", "NAType"}:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number read as a float
    return str(value).strip()
