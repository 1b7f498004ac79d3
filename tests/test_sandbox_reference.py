"""The sandbox and the synthetic study against the real documents in tests/data/reference
(copied from the project's reference folder: a schedule, watch results, feedback)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

from fixtures_sandbox import SandboxInfo, http_request
from longterm_sync.sandbox.synth import Study, StudyParams

REFERENCE = Path(__file__).parent / "data" / "reference"


def load(name: str) -> Any:
    return json.loads((REFERENCE / name).read_text(encoding="utf-8"))


def login(info: SandboxInfo, ext: str) -> str:
    reply = http_request(
        info, "POST", "/api/users/token/login/", json_body={"external_id": ext}, token=None
    )
    assert reply.status == 200, reply.body
    token: str = reply.json()["auth_token"]
    return token


def test_reference_documents_round_trip(sandbox_factory: Any) -> None:
    info: SandboxInfo = sandbox_factory()
    schedule = load("schedule-example.json")
    payload = {k: v for k, v in schedule.items() if k not in ("name", "surname", "phone")}
    reply = http_request(
        info, "POST", "/api/users/update_schedule/", json_body={"schedule": payload}
    )
    assert (reply.status, reply.json()) == (200, payload["schedule"])
    stored = http_request(
        info, "GET", f"/api/users/schedules/?external_id={payload['external_id']}"
    ).json()
    assert stored == [{"id": 2, "schedule": payload}]

    feedback = load("feedback-example.json")
    owner = feedback[0]["external_id"]
    http_request(
        info,
        "POST",
        "/api/users/update_schedule/",
        json_body={"schedule": {"external_id": owner, "schedule": []}},
    )
    token = login(info, owner)
    for item in feedback:
        body = {k: item[k] for k in ("video", "date", "comment")}
        assert (
            http_request(
                info, "POST", "/api/feedback-comments/", json_body=body, token=token
            ).status
            == 201
        )
    listed = http_request(info, "GET", f"/api/feedback-comments/?external_id={owner}")
    assert listed.json() == feedback  # same keys, same order, same date rendering

    for item in load("results-example.json"):
        result = copy.deepcopy(item["result"])
        result["video"] = feedback[0]["video"]
        body = {"date": item["date"], "result": result}
        reply = http_request(info, "POST", "/api/watch-results/", json_body=body, token=token)
        assert reply.status == 201
        served = reply.json()
        assert served["date"] == item["date"]
        assert list(served["result"]) == list(item["result"])  # user_feedback stays last
        assert served["result"]["user_feedback"] == feedback[0]  # the first one only


def test_synthetic_results_have_the_reference_shape() -> None:
    reference = load("results-example.json")[0]["result"]
    study = Study(StudyParams(users=1, days=1, samples=10, today=date(2024, 3, 15)))
    p = study.participants[0]
    result = next(post.body["result"] for post in study.posts(p) if post.route == "watch-results")
    assert list(result) == list(reference)
    for key in ("reply_form", "device_info", "playback_data", "gyroscope_data"):
        assert list(result[key]) == list(reference[key]), key
    assert set(result["accelerometer_data"]) == set(reference["accelerometer_data"])
    ref_questions = {q["type"]: list(q) for q in reference["reply_form"]["content"]}
    for question in result["reply_form"]["content"]:
        assert list(question) == ref_questions[question["type"]], question["type"]
    entry = load("schedule-example.json")["schedule"][0]
    synth_entry = p.schedule["schedule"][0]
    assert list(synth_entry) == list(entry)
    assert [list(q) for q in synth_entry["reply_form"]] == [list(q) for q in entry["reply_form"]]
