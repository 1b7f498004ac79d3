"""``--like-preprocess-r``: the table the original ``preprocess.R`` wrote, for R analyses
that read ``dataframe_lts_phase2.csv``.

One row per result, in file order: ``external_id, date, video, q1, q2`` where q1 and q2 are
the values of the first and second question of the reply form (whatever their optional_id),
``NA`` where absent; results whose video name contains ``codec`` or ``src`` are dropped (the
script's two filters). The file is written as R's ``write.csv(df, row.names = FALSE)`` does:
every header and text value in double quotes (inner quotes doubled), ``NA`` bare, logical
columns ``TRUE``/``FALSE``, numeric columns bare with up to 15 significant digits. A column
mixing kinds is character in R, so then every value in it is quoted.
"""

from __future__ import annotations

from typing import Any

from .stats import answer_value, form_content

FILE_NAME = "dataframe_lts_phase2.csv"
COLUMNS = ("external_id", "date", "video", "q1", "q2")
DROPPED = ("codec", "src")


def r_row(item: Any) -> list[Any] | None:
    """The script's row of one item, or None when a filter drops it (or it is no result)."""
    if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
        return None
    result = item["result"]
    video = result.get("video")
    if isinstance(video, str) and any(word in video for word in DROPPED):
        return None
    answers = [
        answer_value(q.get("answer")) if isinstance(q, dict) else None
        for q in form_content(result)[:2]
    ]
    answers += [None] * (2 - len(answers))
    return [item.get("external_id"), item.get("date"), video, *answers]


def _kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "logical"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "numeric"
    return "character"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value).decode()


def r_csv(rows: list[list[Any]]) -> str:
    """The CSV text of ``rows`` as R's write.csv would write it."""
    kinds = [_kind([row[j] for row in rows]) for j in range(len(COLUMNS))]
    lines = [",".join(_quote(c) for c in COLUMNS)]
    for row in rows:
        cells = []
        for value, kind in zip(row, kinds, strict=True):
            if value is None:
                cells.append("NA")
            elif kind == "logical":
                cells.append("TRUE" if value else "FALSE")
            elif kind == "numeric":
                cells.append(_number(value))
            else:
                cells.append(_quote(_text(value)))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
