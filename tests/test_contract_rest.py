"""The platform's REST contract (docs/PROTOCOL.md), pinned over real HTTP against the sandbox.

Each test states one behaviour of the real server with its status code and body. Tests that
write use a private, initially empty platform (module scope) with the server date pinned to
TODAY and their own external ids, so they do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures_sandbox import HttpReply, SandboxInfo, http_request, start_sandbox
from longterm_sync.sandbox.fill import fill_platform
from longterm_sync.sandbox.synth import Study, StudyParams

TODAY = date(2024, 3, 15)  # Warsaw is on +01:00 until 2024-03-31
# Django's built-in error pages (DEBUG off, no templates): full documents, not a bare <h1>
SERVER_ERROR = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
    b"</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)
NOT_FOUND = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    info = start_sandbox(tmp_path_factory.mktemp("contract"), ["--today", TODAY.isoformat()])
    try:
        yield info
    finally:
        info.stop()


def day(offset: int, suffix: str = "") -> str:
    return f"{(TODAY + timedelta(days=offset)).isoformat()}T00:00:00{suffix}"


def entry(start: str, video: str = "subset1/clip_A.mp4", tag: str = "") -> dict[str, Any]:
    return {
        "start": start,
        "end": start[:10] + "T23:59:59",
        "service": [{"service_name": "A", "video": video}],
        "reply_form": [{"optional_id": "q1", "type": "MOS", "tag": tag}],
    }


def fresh_id() -> str:
    return "ext-" + uuid.uuid4().hex[:12]


def upload(info: SandboxInfo, schedule: dict[str, Any]) -> HttpReply:
    return http_request(
        info, "POST", "/api/users/update_schedule/", json_body={"schedule": schedule}
    )


def create(info: SandboxInfo, offsets: list[int], **extra: Any) -> tuple[str, str]:
    """A new participant with entries at ``offsets`` days; returns (external_id, token)."""
    ext = fresh_id()
    schedule = {"external_id": ext, "language": "PL", "comments": "first", **extra}
    schedule["schedule"] = [entry(day(n)) for n in offsets]
    reply = upload(info, schedule)
    assert reply.status == 200, reply.body
    return ext, login(info, ext)


def login(info: SandboxInfo, ext: str) -> str:
    reply = http_request(
        info, "POST", "/api/users/token/login/", json_body={"external_id": ext}, token=None
    )
    assert reply.status == 200, reply.body
    token: str = reply.json()["auth_token"]
    return token


def stored(info: SandboxInfo, ext: str) -> dict[str, Any]:
    reply = http_request(info, "GET", f"/api/users/schedules/?external_id={ext}")
    assert reply.status == 200
    items = reply.json()
    assert len(items) == 1, items
    schedule: dict[str, Any] = items[0]["schedule"]
    return schedule


def post(info: SandboxInfo, route: str, body: dict[str, Any], token: str) -> HttpReply:
    return http_request(info, "POST", f"/api/{route}/", json_body=body, token=token)


def listing(info: SandboxInfo, route: str, query: str = "") -> HttpReply:
    return http_request(info, "GET", f"/api/{route}/" + (f"?{query}" if query else ""))


# -- authentication -------------------------------------------------------------------------


def test_no_authorization_header_is_401_with_www_authenticate(platform: SandboxInfo) -> None:
    reply = http_request(platform, "GET", "/api/users/", token=None)
    assert reply.status == 401
    assert reply.json() == NO_CREDENTIALS
    assert reply.headers["WWW-Authenticate"] == "Token"


def test_other_scheme_is_not_provided(platform: SandboxInfo) -> None:
    reply = http_request(
        platform,
        "GET",
        "/api/users/",
        token=None,
        headers={"Authorization": f"Bearer {platform.token}"},
    )
    assert (reply.status, reply.json()) == (401, NO_CREDENTIALS)


def test_unknown_token_is_invalid(platform: SandboxInfo) -> None:
    reply = http_request(platform, "GET", "/api/users/", token="0" * 40)
    assert (reply.status, reply.json()) == (401, {"detail": "Invalid token."})
    assert reply.headers["WWW-Authenticate"] == "Token"


def test_keyword_alone_is_invalid_header(platform: SandboxInfo) -> None:
    reply = http_request(
        platform, "GET", "/api/users/", token=None, headers={"Authorization": "Token"}
    )
    assert reply.status == 401
    assert reply.json() == {"detail": "Invalid token header. No credentials provided."}


def test_keyword_is_case_insensitive(platform: SandboxInfo) -> None:
    reply = http_request(
        platform,
        "GET",
        "/api/users/",
        token=None,
        headers={"Authorization": f"tOkEn {platform.token}"},
    )
    assert reply.status == 200 and reply.json()[0] == {"external_id": "operator"}


def test_any_valid_token_may_call_every_route(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    reply = http_request(platform, "GET", "/api/users/schedules/", token=token)
    assert reply.status == 200
    assert any(item["schedule"].get("external_id") == ext for item in reply.json())


# -- routing --------------------------------------------------------------------------------


def test_missing_slash_is_301_before_auth_with_query_kept(platform: SandboxInfo) -> None:
    reply = http_request(
        platform, "GET", "/api/watch-results?external_id=a,b&start_date=x", token=None
    )
    assert reply.status == 301
    assert reply.headers["Location"] == "/api/watch-results/?external_id=a,b&start_date=x"
    assert reply.body == b""


def test_missing_slash_on_a_post_route_redirects_too(platform: SandboxInfo) -> None:
    reply = http_request(
        platform, "POST", "/api/users/update_schedule", json_body={"schedule": {}}, token=None
    )
    assert (reply.status, reply.headers["Location"]) == (301, "/api/users/update_schedule/")


@pytest.mark.parametrize("path", ["/api/nothing/", "/api/nothing", "/", "/api/users/x/"])
def test_unknown_path_is_404_html(platform: SandboxInfo, path: str) -> None:
    reply = http_request(platform, "GET", path, token=None)
    assert reply.status == 404
    assert reply.content_type is not None and reply.content_type.startswith("text/html")
    assert reply.body == NOT_FOUND


def test_wrong_method_is_405_after_auth(platform: SandboxInfo) -> None:
    reply = http_request(platform, "PUT", "/api/users/", json_body={})
    assert (reply.status, reply.json()) == (405, {"detail": 'Method "PUT" not allowed.'})
    unauthenticated = http_request(platform, "PUT", "/api/users/", json_body={}, token=None)
    assert (unauthenticated.status, unauthenticated.json()) == (401, NO_CREDENTIALS)


def test_events_has_no_get_and_update_schedule_no_get(platform: SandboxInfo) -> None:
    for path in ("/api/events/", "/api/users/update_schedule/"):
        reply = http_request(platform, "GET", path)
        assert (reply.status, reply.json()) == (405, {"detail": 'Method "GET" not allowed.'})


# -- response format ------------------------------------------------------------------------


def test_json_headers_exact(platform: SandboxInfo) -> None:
    reply = http_request(platform, "GET", "/api/users/", headers={"Accept-Encoding": "gzip, br"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert reply.headers.get("Content-Encoding") is None
    assert reply.headers["Connection"] == "close"
    assert b" " not in reply.body  # compact separators, like DRF's JSONRenderer


def test_non_ascii_is_sent_unescaped(platform: SandboxInfo) -> None:
    ext = fresh_id()
    reply = upload(
        platform,
        {"external_id": ext, "comments": "Zła jakość – żółw", "schedule": [entry(day(0))]},
    )
    assert reply.status == 200
    listed = http_request(platform, "GET", f"/api/users/schedules/?external_id={ext}")
    assert "Zła jakość – żółw".encode() in listed.body
    assert b"\\u" not in listed.body


def test_server_error_is_html(platform: SandboxInfo) -> None:
    reply = http_request(platform, "POST", "/api/users/update_schedule/", json_body={})
    assert reply.status == 500
    assert reply.body == SERVER_ERROR
    assert reply.content_type == "text/html"


# -- accounts and schedules -----------------------------------------------------------------


def test_users_lists_every_account_in_creation_order_ignoring_query(platform: SandboxInfo) -> None:
    a, _ = create(platform, [0])
    b, _ = create(platform, [0])
    reply = http_request(platform, "GET", f"/api/users/?external_id={a}&page=2")
    assert reply.status == 200
    ids = [item["external_id"] for item in reply.json()]
    assert ids[0] == "operator"
    assert ids.index(a) < ids.index(b)
    assert all(set(item) == {"external_id"} for item in reply.json())


def test_schedules_lists_accounts_without_schedule_as_empty(platform: SandboxInfo) -> None:
    reply = http_request(platform, "GET", "/api/users/schedules/")
    assert reply.status == 200
    assert reply.json()[0] == {"id": 1, "schedule": {}}  # the operator


def test_schedules_external_id_filter(platform: SandboxInfo) -> None:
    a, _ = create(platform, [0])
    b, _ = create(platform, [0])

    def ids(query: str) -> list[str]:
        reply = http_request(platform, "GET", f"/api/users/schedules/{query}")
        assert reply.status == 200
        return [item["schedule"].get("external_id") for item in reply.json()]

    assert ids(f"?external_id={a},{b}") == [a, b]
    assert ids(f"?external_id={b},unknown") == [b]
    assert ids("?external_id=unknown") == []
    assert ids(f"?external_id={a},%20{b}") == [a]  # no trimming
    assert ids(f"?external_id={a}&external_id={b}") == [b]  # last one wins
    unfiltered = ids("?external_id=")
    assert a in unfiltered and b in unfiltered and None in unfiltered


def test_me_config_returns_callers_schedule(platform: SandboxInfo) -> None:
    ext, token = create(platform, [3])
    reply = http_request(platform, "GET", "/api/users/me/config/", token=token)
    assert reply.status == 200
    assert reply.json() == {"schedule": stored(platform, ext)}
    operator = http_request(platform, "GET", "/api/users/me/config/")
    assert operator.json() == {"schedule": {}}


def test_login_gives_the_same_40_hex_token_every_time(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert login(platform, ext) == token


def test_login_unknown_and_missing_id(platform: SandboxInfo) -> None:
    reply = http_request(
        platform, "POST", "/api/users/token/login/", json_body={"external_id": "nobody"}, token=None
    )
    assert reply.status == 400
    assert reply.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    missing = http_request(platform, "POST", "/api/users/token/login/", json_body={}, token=None)
    assert (missing.status, missing.json()) == (400, {"external_id": ["This field is required."]})


# -- update_schedule: errors ----------------------------------------------------------------


def test_update_schedule_wrong_content_type_is_415(platform: SandboxInfo) -> None:
    reply = http_request(
        platform,
        "POST",
        "/api/users/update_schedule/",
        body=b'{"schedule": {}}',
        headers={"Content-Type": "text/plain"},
    )
    assert reply.status == 415
    assert reply.json() == {"detail": 'Unsupported media type "text/plain" in request.'}


def test_update_schedule_bad_json_is_400(platform: SandboxInfo) -> None:
    reply = http_request(
        platform,
        "POST",
        "/api/users/update_schedule/",
        body=b'{"schedule": ',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400
    assert reply.json()["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize(
    "body", [{}, {"external_id": "x"}, {"schedule": "text"}, {"schedule": [1, 2]}]
)
def test_update_schedule_without_schedule_object_is_500(
    platform: SandboxInfo, body: dict[str, Any]
) -> None:
    reply = http_request(platform, "POST", "/api/users/update_schedule/", json_body=body)
    assert (reply.status, reply.body) == (500, SERVER_ERROR)


@pytest.mark.parametrize("schedule", [{"schedule": []}, {"external_id": "", "schedule": []}])
def test_update_schedule_without_identifier_is_400(
    platform: SandboxInfo, schedule: dict[str, Any]
) -> None:
    reply = upload(platform, schedule)
    assert (reply.status, reply.json()) == (400, ["No user identifier specified"])


def test_new_participant_without_entry_list_leaves_an_orphan(platform: SandboxInfo) -> None:
    ext = fresh_id()
    reply = upload(platform, {"external_id": ext, "language": "PL"})
    assert (reply.status, reply.body) == (500, SERVER_ERROR)
    users = http_request(platform, "GET", "/api/users/").json()
    assert {"external_id": ext} in users
    token = login(platform, ext)  # the account exists
    me = http_request(platform, "GET", "/api/users/me/config/", token=token)
    assert me.json() == {"schedule": {}}
    assert http_request(platform, "GET", f"/api/users/schedules/?external_id={ext}").json() == []
    # a later, valid upload only gains the entry list; the orphan stays invisible to filters
    later = upload(platform, {"external_id": ext, "language": "PL", "schedule": [entry(day(5))]})
    assert (later.status, later.json()) == (200, [entry(day(5))])
    me = http_request(platform, "GET", "/api/users/me/config/", token=token)
    assert me.json() == {"schedule": {"schedule": [entry(day(5))]}}
    assert http_request(platform, "GET", f"/api/users/schedules/?external_id={ext}").json() == []


@pytest.mark.parametrize("start", ["2024-03-20", None, "tomorrow", 20240320])
def test_bad_start_is_500_after_the_account_exists(platform: SandboxInfo, start: Any) -> None:
    ext = fresh_id()
    bad = entry(day(5))
    if start is None:
        del bad["start"]
    else:
        bad["start"] = start
    reply = upload(platform, {"external_id": ext, "schedule": [entry(day(4)), bad]})
    assert (reply.status, reply.body) == (500, SERVER_ERROR)
    assert {"external_id": ext} in http_request(platform, "GET", "/api/users/").json()


def test_bad_start_on_existing_participant_changes_nothing(platform: SandboxInfo) -> None:
    ext, _ = create(platform, [0, 5])
    before = stored(platform, ext)
    reply = upload(platform, {"external_id": ext, "schedule": [entry(day(9)), entry("2024-04-01")]})
    assert (reply.status, reply.body) == (500, SERVER_ERROR)
    assert stored(platform, ext) == before


# -- update_schedule: the merge rule --------------------------------------------------------


def test_new_participant_is_stored_whole_past_entries_included(platform: SandboxInfo) -> None:
    ext = fresh_id()
    schedule = {
        "external_id": ext,
        "language": "EN",
        "comments": "c",
        "extra": {"kept": True},
        "schedule": [entry(day(-30)), entry(day(0)), entry(day(10))],
    }
    reply = upload(platform, schedule)
    assert (reply.status, reply.json()) == (200, schedule["schedule"])
    assert stored(platform, ext) == schedule


def test_merge_example_from_api_md(platform: SandboxInfo) -> None:
    ext = fresh_id()
    first = [entry(day(n), tag="old") for n in (-4, 0, 1, 2, 5)]
    assert upload(platform, {"external_id": ext, "schedule": first}).status == 200
    second = [entry(day(n), tag="new") for n in (-4, 0, 1, 2, 3, 7)]
    reply = upload(
        platform,
        {"external_id": ext, "language": "XX", "comments": "changed", "schedule": second},
    )
    expected = [
        entry(day(-4), tag="old"),
        entry(day(0), tag="old"),
        entry(day(1), tag="old"),
        entry(day(2), tag="new"),  # overwritten in place
        entry(day(5), tag="old"),  # never deleted
        entry(day(3), tag="new"),  # appended
        entry(day(7), tag="new"),
    ]
    assert (reply.status, reply.json()) == (200, expected)
    schedule = stored(platform, ext)
    assert schedule["schedule"] == expected
    assert "language" not in schedule and schedule.get("comments") is None


def test_existing_participant_keeps_language_and_comments(platform: SandboxInfo) -> None:
    ext, _ = create(platform, [0], language="PL")
    upload(platform, {"external_id": ext, "language": "EN", "comments": "new", "schedule": []})
    schedule = stored(platform, ext)
    assert (schedule["language"], schedule["comments"]) == ("PL", "first")


def test_offset_start_does_not_match_naive_start(platform: SandboxInfo) -> None:
    ext, _ = create(platform, [5])
    reply = upload(
        platform, {"external_id": ext, "schedule": [entry(day(5, "+01:00"), tag="offset")]}
    )
    assert reply.status == 200
    starts = [e["start"] for e in reply.json()]
    assert starts == [day(5), day(5, "+01:00")]  # the same day, twice


def test_horizon_uses_the_date_written_in_the_string(platform: SandboxInfo) -> None:
    ext, _ = create(platform, [])
    # 23:30 on day +1 at -05:00 is day +2 in Warsaw, but the written date (+1) decides
    late_evening = f"{(TODAY + timedelta(days=1)).isoformat()}T23:30:00-05:00"
    early = f"{(TODAY + timedelta(days=2)).isoformat()}T00:30:00+09:00"
    reply = upload(platform, {"external_id": ext, "schedule": [entry(late_evening), entry(early)]})
    assert reply.status == 200
    assert [e["start"] for e in reply.json()] == [early]


# -- list routes ----------------------------------------------------------------------------


def test_watch_result_post_and_date_rendering(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    reply = post(
        platform,
        "watch-results",
        {"date": "2024-03-10T20:18:46.889", "result": {"video": "v"}},
        token,
    )
    assert reply.status == 201
    assert reply.json() == {
        "external_id": ext,
        "date": "2024-03-10T20:18:46.889000+01:00",
        "result": {"video": "v", "user_feedback": None},
    }
    summer = post(platform, "watch-results", {"date": "2024-07-01T10:00:00Z", "result": {}}, token)
    assert summer.json()["date"] == "2024-07-01T12:00:00+02:00"  # no microseconds when zero


def test_post_required_fields(platform: SandboxInfo) -> None:
    _, token = create(platform, [0])
    reply = post(platform, "watch-results", {}, token)
    assert reply.status == 400
    assert reply.json() == {
        "date": ["This field is required."],
        "result": ["This field is required."],
    }
    fb = post(platform, "feedback-comments", {"video": "v", "date": "2024-03-10T10:00:00"}, token)
    assert (fb.status, fb.json()) == (400, {"comment": ["This field is required."]})
    mv = post(platform, "missing-videos", {"date": "2024-03-10T10:00:00"}, token)
    assert (mv.status, mv.json()) == (400, {"video": ["This field is required."]})


def test_list_is_insertion_order_not_date_order(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    for when in ("2024-03-12T10:00:00", "2024-03-14T10:00:00", "2024-03-11T10:00:00"):
        assert (
            post(platform, "watch-results", {"date": when, "result": {"n": when}}, token).status
            == 201
        )
    reply = listing(platform, "watch-results", f"external_id={ext}")
    assert reply.status == 200
    assert [item["date"][:10] for item in reply.json()] == [
        "2024-03-12",
        "2024-03-14",
        "2024-03-11",
    ]
    assert [list(item) for item in reply.json()] == [["external_id", "date", "result"]] * 3


def test_bounds_are_strict_and_naive_means_warsaw(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    for when in ("2024-03-10T00:00:00", "2024-03-11T00:00:00", "2024-03-12T00:00:00"):
        post(platform, "feedback-comments", {"video": "v", "date": when, "comment": when}, token)

    def comments(query: str) -> list[str]:
        reply = listing(platform, "feedback-comments", f"external_id={ext}&{query}")
        assert reply.status == 200, reply.body
        return [item["comment"][:10] for item in reply.json()]

    assert comments("start_date=2024-03-10T00:00:00") == ["2024-03-11", "2024-03-12"]
    assert comments("stop_date=2024-03-12T00:00:00") == ["2024-03-10", "2024-03-11"]
    assert comments("start_date=2024-03-10&stop_date=2024-03-12") == ["2024-03-11"]
    # 2024-03-10T23:00:00Z is 2024-03-11T00:00 in Warsaw: strictly after excludes day 11
    assert comments("start_date=2024-03-10T23:00:00Z") == ["2024-03-12"]
    assert comments("start_date=2024-03-10T22:59:59%2B00:00") == ["2024-03-11", "2024-03-12"]


def test_plus_must_be_percent_encoded(platform: SandboxInfo) -> None:
    ok = listing(platform, "watch-results", "start_date=2024-03-10T00:00:00%2B01:00")
    assert ok.status == 200
    reply = listing(platform, "watch-results", "start_date=2024-03-10T00:00:00+01:00")
    assert (reply.status, reply.json()) == (400, {"start_date": ["Enter a valid date/time."]})


def test_invalid_bound_names_the_field(platform: SandboxInfo) -> None:
    reply = listing(platform, "feedback-comments", "stop_date=yesterday")
    assert (reply.status, reply.json()) == (400, {"stop_date": ["Enter a valid date/time."]})


def test_no_pagination(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    for n in range(3):
        post(
            platform, "missing-videos", {"date": f"2024-03-1{n}T08:00:00", "video": f"v{n}"}, token
        )
    reply = listing(platform, "missing-videos", f"external_id={ext}&page=2&limit=1&page_size=1")
    assert reply.status == 200 and isinstance(reply.json(), list) and len(reply.json()) == 3


def test_missing_videos_ignore_dates(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    reply = post(
        platform, "missing-videos", {"date": "2024-03-10T08:15:00", "video": "a/b.mp4"}, token
    )
    item = {"external_id": ext, "date": "2024-03-10T08:15:00+01:00", "video": "a/b.mp4"}
    assert (reply.status, reply.json()) == (201, item)
    query = f"external_id={ext}&start_date=2030-01-01&stop_date=2000-01-01"
    assert listing(platform, "missing-videos", query).json() == [item]


def test_item_external_id_is_empty_when_owner_has_no_schedule(platform: SandboxInfo) -> None:
    orphan = fresh_id()
    upload(platform, {"external_id": orphan})  # 500: orphan account
    token = login(platform, orphan)
    reply = post(
        platform,
        "feedback-comments",
        {"video": "v", "date": "2024-03-10T10:00:00", "comment": "x"},
        token,
    )
    assert reply.status == 201
    assert reply.json() == {
        "video": "v",
        "external_id": "",
        "date": "2024-03-10T10:00:00+01:00",
        "comment": "x",
    }


def test_user_feedback_is_only_the_first_comment(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    for comment in ("first", "second"):
        post(
            platform,
            "feedback-comments",
            {"video": "s/v.mp4", "date": "2024-03-10T20:18:46.889", "comment": comment},
            token,
        )
    other, other_token = create(platform, [0])
    post(
        platform,
        "feedback-comments",
        {"video": "s/v.mp4", "date": "2024-03-10T10:00:00", "comment": "not mine"},
        other_token,
    )
    phone_said = [{"comment": "what the phone sent"}]
    for video in ("s/v.mp4", "v.mp4"):
        result = {"video": video, "user_feedback": phone_said, "service": "A"}
        post(platform, "watch-results", {"date": "2024-03-10T21:00:00", "result": result}, token)
    items = listing(platform, "watch-results", f"external_id={ext}").json()
    assert items[0]["result"] == {
        "video": "s/v.mp4",
        "service": "A",
        "user_feedback": {
            "video": "s/v.mp4",
            "external_id": ext,
            "date": "2024-03-10T20:18:46.889000+01:00",
            "comment": "first",
        },
    }
    assert list(items[0]["result"])[-1] == "user_feedback"
    assert items[1]["result"] == {"video": "v.mp4", "service": "A", "user_feedback": None}
    assert len(listing(platform, "feedback-comments", f"external_id={ext}").json()) == 2
    assert other  # the other participant's comment never leaks into this one's results


def test_poison_row_fails_every_list_that_includes_it(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    healthy, healthy_token = create(platform, [0])
    post(
        platform,
        "watch-results",
        {"date": "2024-03-10T10:00:00", "result": {"ok": 1}},
        healthy_token,
    )
    reply = post(
        platform, "watch-results", {"date": "2024-03-11T10:00:00", "result": "oops"}, token
    )
    assert (reply.status, reply.body) == (500, SERVER_ERROR)  # and yet the row is saved:
    for query in ("", f"external_id={ext}", f"external_id={healthy},{ext}"):
        failed = listing(platform, "watch-results", query)
        assert (failed.status, failed.body) == (500, SERVER_ERROR)
    assert listing(platform, "watch-results", f"external_id={healthy}").status == 200
    # the bounds exclude it: the list does not include it and works
    assert (
        listing(platform, "watch-results", f"external_id={ext}&stop_date=2024-03-11").json() == []
    )


def test_events_post(platform: SandboxInfo) -> None:
    _, token = create(platform, [0])
    reply = post(platform, "events", {"user": 1, "event": {"type": "app_start"}}, token)
    assert reply.status == 201
    assert reply.json()["event"] == {"type": "app_start"}
    bad = post(platform, "events", {"user": 999999, "event": {}}, token)
    assert (bad.status, bad.json()) == (
        400,
        {"user": ['Invalid pk "999999" - object does not exist.']},
    )


# -- filling through the public API ---------------------------------------------------------


def test_fill_script_works_through_the_public_api(tmp_path: Path) -> None:
    info = start_sandbox(tmp_path, ["--today", TODAY.isoformat()])
    try:
        study = Study(StudyParams(users=3, days=4, samples=20, today=TODAY, seed=7, poison=1))
        summary = asyncio.run(fill_platform(info.url, info.token, study))
        assert summary.counts["schedules"] == 3 and summary.counts["orphans"] == 1
        users = http_request(info, "GET", "/api/users/").json()
        assert len(users) == 1 + 3 + 1
        schedules = http_request(info, "GET", "/api/users/schedules/").json()
        sent = {p.external_id: p for p in study.participants}
        for item in schedules:
            ext = item["schedule"].get("external_id")
            if ext in sent:
                assert item["schedule"] == sent[ext].payload
                assert not {"name", "surname", "phone"} & set(item["schedule"])
        healthy = ",".join(p.external_id for p in study.participants if not p.poison)
        results = http_request(info, "GET", f"/api/watch-results/?external_id={healthy}")
        assert results.status == 200
        expected = sum(
            1
            for p in study.participants
            if not p.poison
            for post_ in study.posts(p)
            if post_.route == "watch-results"
        )
        assert len(results.json()) == expected > 0
        assert http_request(info, "GET", "/api/watch-results/").status == 500  # poison row
        feedback = http_request(info, "GET", "/api/feedback-comments/").json()
        assert len(feedback) == summary.counts["feedback-comments"]
    finally:
        info.stop()


def test_fill_script_as_a_program(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    info = start_sandbox(tmp_path / "server", ["--today", TODAY.isoformat()])
    try:
        env = {**os.environ, "FILL_TOKEN": info.token}
        proc = subprocess.run(
            [sys.executable, "-m", "longterm_sync.sandbox.fill", "--url", info.url + "/",
             "--users", "2", "--days", "3", "--samples", "10", "--today", TODAY.isoformat(),
             "--study-dir", str(tmp_path / "study")],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "2 schedules" in proc.stdout and info.token not in proc.stdout + proc.stderr
        assert (tmp_path / "study" / "users.csv").exists()
        users = http_request(info, "GET", "/api/users/").json()
        assert len(users) == 3
        bad = subprocess.run(
            [sys.executable, "-m", "longterm_sync.sandbox.fill", "--url", info.url,
             "--token", "0" * 40, "--users", "1"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert bad.returncode == 3 and "refused token 0000...0000" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        info.stop()


def test_big_list_is_served_whole_with_exact_length(platform: SandboxInfo) -> None:
    """Several MB: the server streams it in batches; the client sees one exact JSON array."""
    ext, token = create(platform, [0])
    post(
        platform,
        "feedback-comments",
        {"video": "v1", "date": "2024-03-10T10:00:00", "comment": "c"},
        token,
    )
    sent = []
    for n in range(12):
        result = {"video": f"v{n % 3}", "samples": [n + k / 7 for k in range(40_000)], "ł": "ż"}
        assert (
            post(
                platform,
                "watch-results",
                {"date": f"2024-03-10T1{n % 10}:00:00", "result": result},
                token,
            ).status
            == 201
        )
        sent.append(result)
    reply = listing(platform, "watch-results", f"external_id={ext}")
    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == len(reply.body) > 8_000_000
    items = reply.json()
    assert [item["result"]["samples"] for item in items] == [r["samples"] for r in sent]
    assert [item["result"]["user_feedback"] is not None for item in items] == [
        n % 3 == 1 for n in range(12)
    ]


# -- behaviours found side by side with the platform server (issue 9) ------------------------


def test_junk_in_both_bounds_names_both_fields(platform: SandboxInfo) -> None:
    reply = listing(platform, "watch-results", "start_date=junk&stop_date=also-junk")
    invalid = ["Enter a valid date/time."]
    assert (reply.status, reply.json()) == (400, {"start_date": invalid, "stop_date": invalid})


@pytest.mark.parametrize(
    ("field", "value"),
    [("start_date", "2026-10-25T02:30:00"), ("stop_date", "2026-03-29T02:30:00")],
)
def test_naive_bound_in_a_dst_change_names_the_field(
    platform: SandboxInfo, field: str, value: str
) -> None:
    """Autumn overlap (ambiguous) and spring gap (does not exist) in Warsaw time."""
    reply = listing(platform, "feedback-comments", f"{field}={value}")
    assert reply.status == 400 and list(reply.json()) == [field]
    assert "ambiguous or it may not exist" in reply.json()[field][0]
    assert listing(platform, "feedback-comments", f"{field}=2026-10-25T03:30:00").status == 200


def test_blank_feedback_comment_is_400(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    for blank in ("", "   "):
        reply = post(
            platform,
            "feedback-comments",
            {"video": "v.mp4", "date": "2024-03-10T10:00:00", "comment": blank},
            token,
        )
        assert (reply.status, reply.json()) == (400, {"comment": ["This field may not be blank."]})
    assert listing(platform, "feedback-comments", f"external_id={ext}").json() == []


def test_result_that_is_not_an_object_is_saved_and_answers_500(platform: SandboxInfo) -> None:
    ext, token = create(platform, [0])
    reply = post(platform, "watch-results", {"date": "2024-03-11T10:00:00", "result": [1]}, token)
    assert (reply.status, reply.body, reply.content_type) == (500, SERVER_ERROR, "text/html")
    assert listing(platform, "watch-results", f"external_id={ext}").status == 500  # saved


def test_token_login_with_a_bad_token_header_is_401(platform: SandboxInfo) -> None:
    ext, _ = create(platform, [0])
    body = {"external_id": ext}
    bad = http_request(
        platform, "POST", "/api/users/token/login/", json_body=body, token="deadbeef"
    )
    assert (bad.status, bad.json()) == (401, {"detail": "Invalid token."})
    assert bad.headers["WWW-Authenticate"] == "Token"
    other_scheme = http_request(
        platform,
        "POST",
        "/api/users/token/login/",
        json_body=body,
        token=None,
        headers={"Authorization": "Bearer deadbeef"},
    )
    assert other_scheme.status == 200  # not a token header: ignored, as DRF does
    good = http_request(platform, "POST", "/api/users/token/login/", json_body=body)
    assert good.status == 200


def test_router_root_links_the_routers_lists(platform: SandboxInfo) -> None:
    reply = http_request(platform, "GET", "/api/")
    assert reply.status == 200 and reply.content_type == "application/json"
    links = reply.json()
    assert list(links) == [
        "events",
        "forms",
        "feedback-comments",
        "watch-results",
        "missing-videos",
    ]
    assert links["watch-results"] == platform.url + "/api/watch-results/"
    assert http_request(platform, "GET", "/api/", token=None).status == 401


def test_json_suffix_on_list_routes_and_custom_actions(platform: SandboxInfo) -> None:
    users = http_request(platform, "GET", "/api/users.json")
    assert (users.status, users.body) == (200, http_request(platform, "GET", "/api/users/").body)
    assert (
        http_request(platform, "GET", "/api/watch-results.json?stop_date=2000-01-01").json() == []
    )
    assert http_request(platform, "GET", "/api/users.json", token=None).status == 401
    action = http_request(platform, "GET", "/api/users/schedules.json")
    assert (action.status, action.body) == (500, SERVER_ERROR)


@pytest.mark.parametrize("path", ["/swagger.json", "/swagger.yaml", "/api/swagger/", "/api/doc/"])
def test_api_documentation_needs_a_token(platform: SandboxInfo, path: str) -> None:
    reply = http_request(platform, "GET", path, token=None)
    assert (reply.status, reply.json()) == (401, NO_CREDENTIALS)
    assert http_request(platform, "GET", path).status == 200
