"""Schedules shaped like the experimenter's template, built in code (tests never read ../shared)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

MOS_BUTTONS = [
    {"value": v, "button_text": [{"language": "eng", "text": f"{v}. grade"}]} for v in range(1, 6)
]


def reply_form() -> list[dict[str, Any]]:
    return [
        {"optional_id": "q1", "type": "MOS", "buttons": MOS_BUTTONS, "description": []},
        {
            "optional_id": "q2",
            "type": "MOS",
            "buttons": [
                {"value": True, "button_text": [{"language": "eng", "text": "Yes"}]},
                {"value": False, "button_text": [{"language": "eng", "text": "No"}]},
            ],
        },
        {"optional_id": "q3", "type": "TEXT", "description": []},
        {
            "optional_id": "q4",
            "type": "QUALTRICS",
            "qualtrics_url": "https://survey.qualtrics.com/jfe/form/SV_x",
            "description": [],
        },
    ]


def entry(day: date, video: str = "subset1/clip_A.mp4", *, offset: str = "") -> dict[str, Any]:
    return {
        "start": f"{day.isoformat()}T00:00:00{offset}",
        "end": f"{day.isoformat()}T23:59:59{offset}",
        "service": [{"service_name": "A", "video": video}],
        "reply_form": reply_form(),
    }


def schedule(
    days: list[date],
    *,
    external_id: str | None = None,
    name: str = "Long_001",
    surname: str = "Stress_test",
    phone: str = "1234567",
    video: str = "subset1/clip_A.mp4",
) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "surname": surname, "phone": phone, "language": "PL"}
    if external_id is not None:
        doc["external_id"] = external_id
    doc["comments"] = ""
    doc["schedule"] = [entry(d, video) for d in days]
    return doc


def relative_days(today: date, offsets: list[int]) -> list[date]:
    return [today + timedelta(days=n) for n in offsets]


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False), encoding="utf-8")
    return path
