"""Schedules shaped like the experimenter's template, built in code (tests never read ../shared)."""

from __future__ import annotations

import json
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from longterm_sync.merge_plan import Action

#: docs/PROTOCOL.md's example (today = day 0): stored -4, 0, +1, +2, +5; upload these days.
API_MD_STORED = [-4, 0, 1, 2, 5]
API_MD_UPLOAD = [-4, 0, 1, 2, 3, 7]
API_MD_ACTIONS = [
    Action.IGNORED_PAST,
    Action.IGNORED_SOON,
    Action.IGNORED_SOON,
    Action.OVERWRITE,
    Action.APPEND,
    Action.APPEND,
]
API_MD_RESULT = [-4, 0, 1, 2, 5, 3, 7]

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


def put_videos(folder: Path, names: dict[str, bytes]) -> Path:
    for name, data in names.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def get_json(info: Any, route: str) -> Any:
    """GET a platform route with the sandbox operator's token (``info`` is a SandboxInfo)."""
    request = urllib.request.Request(
        f"{info.url}{route}", headers={"Authorization": f"Token {info.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())
