"""The sandbox platform's REST side: aiohttp speaking exactly what docs/PROTOCOL.md describes.

One catch-all handler reproduces the order in which the real stack (nginx, gunicorn, Django's
CommonMiddleware, Django REST Framework) answers: missing trailing slash (301) and unknown
path (404 HTML) before authentication, authentication (401) before the method check (405),
then the view. Fault injection (latency, 500/502, connection resets) applies to GETs only and
draws from a seeded RNG, so a failing benchmark or test can be replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from ..timeutil import WARSAW, today_in
from .store import BadRequest, ServerCrash, Store, dumps, to_us

log = logging.getLogger("longterm_sync.sandbox.rest")
# Whether this request is to be cut halfway (a typed key where this aiohttp has them).
RESET: Any = web.RequestKey("reset", bool) if hasattr(web, "RequestKey") else "reset"

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


def error_page(title: str, details: str = "") -> bytes:
    """Django's built-in error page (``django.views.defaults.ERROR_PAGE_TEMPLATE``): what the
    platform sends for 404 and 500 with ``DEBUG = False`` and no templates of its own."""
    return (
        f'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>{title}</title>\n</head>\n'
        f"<body>\n  <h1>{title}</h1><p>{details}</p>\n</body>\n</html>\n"
    ).encode()


SERVER_ERROR_HTML = error_page("Server Error (500)")
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
NOT_FOUND_HTML = error_page("Not Found", "The requested resource was not found on this server.")
DATETIME_FORMAT_ERROR = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
MAX_BODY = 512 * 1024 * 1024
STREAM_BATCH_BYTES = 4 * 1024 * 1024  # result texts read and sent per step of a big list


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass(frozen=True)
class Faults:
    """GET-only fault injection; rates are fractions of GETs (0 <= rate <= 0.5)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.error_rate or self.reset_rate)


class HttpAnswer(Exception):
    """Stop handling and send this response (the REST framework's short-circuits)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, body: bytes | Any, **headers: str) -> web.Response:
    """``application/json`` without charset, Content-Length, connection closed after it."""
    payload = body if isinstance(body, bytes) else dumps(body)
    resp = web.Response(status=status, body=payload, headers={"Content-Type": JSON_TYPE, **headers})
    return resp


def html_response(status: int, body: bytes, content_type: str = HTML_TYPE) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def unauthorized(detail: str) -> HttpAnswer:
    return HttpAnswer(json_response(401, {"detail": detail}, **{"WWW-Authenticate": "Token"}))


def parse_filter_datetime(field: str, value: str) -> int | None:
    """A django-filter DateTimeFilter value: naive = Warsaw, date-only = Warsaw midnight.

    Raises :class:`ValueError` with Django's message: not a date/time, or a naive time that
    does not exist or is ambiguous in Warsaw (a DST change; Django's ``make_aware`` refuses).
    """
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("Enter a valid date/time.") from None
    if parsed.tzinfo is None:
        aware = parsed.replace(tzinfo=WARSAW)
        if aware.utcoffset() != aware.replace(fold=1).utcoffset():
            raise ValueError(
                f"{parsed} couldn\u2019t be interpreted in time zone Europe/Warsaw; it may be "
                "ambiguous or it may not exist."
            )
        parsed = aware
    return to_us(parsed)


def parse_body_datetime(value: Any) -> int:
    """A serializer DateTimeField: ISO 8601 only, naive = Warsaw."""
    if not isinstance(value, str) or ("T" not in value and " " not in value.strip()):
        raise ValueError(DATETIME_FORMAT_ERROR)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(DATETIME_FORMAT_ERROR) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WARSAW)
    return to_us(parsed)


def external_id_filter(request: web.Request) -> list[str] | None:
    """``?external_id=a,b``: comma list, no trimming, empty = no filter, last one wins."""
    values = request.query.getall("external_id", [])
    if not values or values[-1] == "":
        return None
    return values[-1].split(",")


Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    get: Handler | None = None
    post: Handler | None = None
    auth: bool = True
    listed: bool = False  # registered on the router: also answers with a ``.json`` suffix


#: What the router root (``/api/``) links to, in the platform's order (``users`` is not one).
ROOT_LINKS = ("events", "forms", "feedback-comments", "watch-results", "missing-videos")
#: The API documentation routes: they exist, and need a token like everything else.
DOC_ROUTES = ("/swagger.json", "/swagger.yaml", "/api/swagger/", "/api/doc/")


class PlatformApp:
    """The platform's routes over a :class:`Store`; ``today`` pins the server date."""

    def __init__(self, store: Store, *, today: date | None = None, faults: Faults | None = None):
        self.store = store
        self.pinned_today = today
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.routes: dict[str, Route] = {
            "/api/": Route(get=self.api_root),
            "/api/users/": Route(get=self.users, listed=True),
            "/api/users/schedules/": Route(get=self.schedules),
            "/api/users/update_schedule/": Route(post=self.update_schedule),
            "/api/users/me/config/": Route(get=self.me_config),
            "/api/users/token/login/": Route(post=self.login, auth=False),
            "/api/watch-results/": Route(get=self.list_results, post=self.post_result, listed=True),
            "/api/feedback-comments/": Route(
                get=self.list_feedback, post=self.post_feedback, listed=True
            ),
            "/api/missing-videos/": Route(
                get=self.list_missing, post=self.post_missing, listed=True
            ),
            "/api/events/": Route(post=self.post_event, listed=True),
            **{path: Route(get=self.api_doc) for path in DOC_ROUTES},
        }
        self.requests = 0

    @property
    def today(self) -> date:
        return self.pinned_today or today_in(WARSAW)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    # -- dispatch -------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        fault = await self._draw_fault(request)
        if fault == "error":
            return self._error_answer(request)
        request[RESET] = fault == "reset"
        try:
            response = await self._answer(request)
        except HttpAnswer as answer:
            response = answer.response
        except ServerCrash as exc:
            log.info("500 for %s %s: %s", request.method, request.path, exc)
            response = html_response(500, SERVER_ERROR_HTML, "text/html")
        if response.prepared:  # streamed: already sent, closed and possibly reset
            return response
        response.force_close()
        if request[RESET] and isinstance(response, web.Response):
            body = bytes(response.body or b"")  # type: ignore[arg-type]
            return await self._stream(request, response, len(body), _once(body))
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        route = self.routes.get(path)
        if route is None and path.endswith(".json") and path[:-5] + "/" in self.routes:
            # DRF's format suffix: a router's list route answers as without it; a custom
            # action (``/api/users/schedules.json``) crashes in the view (500 page).
            route = self.routes[path[:-5] + "/"]
            if not route.listed:
                await self._authenticate(request)
                raise ServerCrash(f"format suffix on the custom action {path}")
        if route is None:
            if not path.endswith("/") and path + "/" in self.routes:
                query = request.query_string
                location = path + "/" + (f"?{query}" if query else "")
                return web.Response(
                    status=301, headers={"Location": location, "Content-Type": HTML_TYPE}
                )
            return html_response(404, NOT_FOUND_HTML)
        account = 0
        if route.auth or request.headers.get("Authorization", "").lower().startswith("token"):
            # A token header is checked even where none is needed (DRF authenticates every
            # request that carries one): a bad one on token login is 401, as on the platform.
            account = await self._authenticate(request)
        handler = {"GET": route.get, "POST": route.post}.get(request.method)
        if request.method == "HEAD":
            handler = route.get
        if request.method == "OPTIONS":
            return json_response(200, {"name": path, "renders": [JSON_TYPE]})
        if handler is None:
            raise HttpAnswer(
                json_response(
                    405,
                    {"detail": f'Method "{request.method}" not allowed.'},
                    Allow=", ".join(m for m, h in (("GET", route.get), ("POST", route.post)) if h)
                    + ", OPTIONS",
                )
            )
        return await handler(request, account)

    async def _authenticate(self, request: web.Request) -> int:
        header = request.headers.get("Authorization", "")
        parts = header.split()
        if not parts or parts[0].lower() != "token":
            raise unauthorized("Authentication credentials were not provided.")
        if len(parts) == 1:
            raise unauthorized("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise unauthorized("Invalid token header. Token string should not contain spaces.")
        account = await self.store.read(self.store.account_by_token, parts[1])
        if account is None:
            raise unauthorized("Invalid token.")
        return account

    async def _draw_fault(self, request: web.Request) -> str:
        """ "error", "reset" or "" for this request; GETs only, after the latency delay."""
        if request.method != "GET" or not self.faults.active:
            return ""
        draw = self.rng.random()
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if draw < self.faults.error_rate:
            return "error"
        if draw < self.faults.error_rate + self.faults.reset_rate:
            log.info("fault: %s connection reset mid-body", request.path_qs)
            return "reset"
        return ""

    def _error_answer(self, request: web.Request) -> web.Response:
        """What a crashed worker (Django 500) or a dead upstream (nginx 502) looks like."""
        log.info("fault: %s answered with an error", request.path_qs)
        if self.rng.random() < 0.5:
            resp = html_response(500, SERVER_ERROR_HTML, "text/html")
        else:
            resp = html_response(502, BAD_GATEWAY_HTML, "text/html")
        resp.force_close()
        return resp

    async def _stream(
        self,
        request: web.Request,
        template: web.StreamResponse,
        length: int,
        chunks: AsyncIterator[bytes],
    ) -> web.StreamResponse:
        """Send ``length`` bytes from ``chunks``; with a reset fault, stop halfway and abort."""
        headers = {k: v for k, v in template.headers.items() if k.lower() != "content-length"}
        resp = web.StreamResponse(status=template.status, headers=headers)
        resp.content_length = length
        resp.force_close()
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        limit = length // 2 if request.get(RESET) else None
        sent = 0
        async for chunk in chunks:
            if limit is not None and sent + len(chunk) >= limit:
                await resp.write(chunk[: limit - sent])
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing more to send on a dead connection
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write_eof()
        return resp

    # -- request bodies -------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        """Parse like DRF's JSON and form parsers: 415 for others, 400 for bad JSON."""
        raw = await request.read()
        ctype = request.headers.get("Content-Type")
        if ctype is None:
            return {}
        media = ctype.split(";", 1)[0].strip().lower()
        if media == JSON_TYPE or media.endswith("+json"):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                try:
                    return json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise HttpAnswer(
                        json_response(400, {"detail": f"JSON parse error - {exc}"})
                    ) from None
        if media == "application/x-www-form-urlencoded":
            return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        raise HttpAnswer(
            json_response(415, {"detail": f'Unsupported media type "{ctype}" in request.'})
        )

    @staticmethod
    def _fields(body: Any, spec: dict[str, str]) -> dict[str, Any]:
        """Serializer validation: required fields, nulls, datetimes, strings; 400 on errors."""
        data = body if isinstance(body, dict) else {}
        if not isinstance(body, dict):
            raise HttpAnswer(
                json_response(
                    400,
                    {
                        "non_field_errors": [
                            f"Invalid data. Expected a dictionary, but got {type(body).__name__}."
                        ]
                    },
                )
            )
        errors: dict[str, list[str]] = {}
        out: dict[str, Any] = {}
        for name, kind in spec.items():
            if name not in data:
                errors[name] = ["This field is required."]
                continue
            value = data[name]
            if value is None:
                errors[name] = ["This field may not be null."]
            elif kind == "datetime":
                try:
                    out[name] = parse_body_datetime(value)
                except ValueError as exc:
                    errors[name] = [str(exc)]
            elif kind == "str":
                if isinstance(value, dict | list):
                    errors[name] = ["Not a valid string."]
                elif str(value).strip() == "":
                    errors[name] = ["This field may not be blank."]
                else:
                    out[name] = str(value)
            elif kind == "int":
                if isinstance(value, bool) or not str(value).strip().lstrip("-").isdigit():
                    errors[name] = ["Incorrect type. Expected pk value, received str."]
                else:
                    out[name] = int(str(value).strip())
            else:
                out[name] = value
        if errors:
            raise HttpAnswer(json_response(400, errors))
        return out

    # -- views ----------------------------------------------------------------------------

    async def api_root(self, request: web.Request, account: int) -> web.StreamResponse:
        base = f"{request.scheme}://{request.host}/api"
        return json_response(200, {name: f"{base}/{name}/" for name in ROOT_LINKS})

    async def api_doc(self, request: web.Request, account: int) -> web.StreamResponse:
        """A short Swagger 2.0 description of the routes (JSON is valid YAML too)."""
        paths = {
            path.removeprefix("/api"): {
                method: {"responses": {"200": {"description": ""}}}
                for method, handler in (("get", route.get), ("post", route.post))
                if handler is not None
            }
            for path, route in self.routes.items()
            if path.startswith("/api/") and path not in DOC_ROUTES and path != "/api/"
        }
        doc = {
            "swagger": "2.0",
            "info": {"title": "Longterm API", "version": "v1"},
            "basePath": "/api",
            "securityDefinitions": {"Token": {"type": "apiKey", "name": "Authorization"}},
            "paths": paths,
        }
        if request.path.endswith(".yaml"):
            return web.Response(body=dumps(doc), headers={"Content-Type": "application/yaml"})
        return json_response(200, doc)

    async def users(self, request: web.Request, account: int) -> web.StreamResponse:
        return json_response(200, await self.store.read(self.store.users))

    async def schedules(self, request: web.Request, account: int) -> web.StreamResponse:
        ids = external_id_filter(request)
        return json_response(200, await self.store.read(self.store.schedules, ids))

    async def me_config(self, request: web.Request, account: int) -> web.StreamResponse:
        return json_response(200, await self.store.read(self.store.my_schedule, account))

    async def update_schedule(self, request: web.Request, account: int) -> web.StreamResponse:
        body = await self._body(request)
        try:
            merged = await self.store.call(self.store.update_schedule, body, self.today)
        except BadRequest as exc:
            return json_response(400, exc.body)
        return json_response(200, merged)

    async def login(self, request: web.Request, account: int) -> web.StreamResponse:
        fields = self._fields(await self._body(request), {"external_id": "str"})
        token = await self.store.read(self.store.login, fields["external_id"])
        if token is None:
            return json_response(
                400, {"non_field_errors": ["Unable to log in with provided credentials."]}
            )
        return json_response(200, {"auth_token": token})

    def _bounds(self, request: web.Request) -> tuple[int | None, int | None]:
        """Both bounds validated before answering: one 400 names every bad field."""
        bounds: dict[str, int | None] = {}
        errors: dict[str, list[str]] = {}
        for name in ("start_date", "stop_date"):
            try:
                bounds[name] = parse_filter_datetime(name, request.query.get(name, ""))
            except ValueError as exc:
                errors[name] = [str(exc)]
        if errors:
            raise HttpAnswer(json_response(400, errors))
        return bounds["start_date"], bounds["stop_date"]

    async def list_results(self, request: web.Request, account: int) -> web.StreamResponse:
        """Streamed in batches: a 100+ MB list costs a few MB of memory, not the list."""
        ids = external_id_filter(request)
        start, stop = self._bounds(request)
        plan = await self.store.read(self.store.plan_results, ids, start, stop)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"["
            for first, last in plan.batches(STREAM_BATCH_BYTES):
                texts = await self.store.read(self.store.result_texts, plan.ids[first:last])
                yield b"".join(plan.pieces(first, texts))
            yield b"]"

        template = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
        return await self._stream(request, template, plan.length, chunks())

    async def list_feedback(self, request: web.Request, account: int) -> web.StreamResponse:
        ids = external_id_filter(request)
        start, stop = self._bounds(request)
        body = await self.store.read(self.store.list_feedback, ids, start, stop)
        return json_response(200, body)

    async def list_missing(self, request: web.Request, account: int) -> web.StreamResponse:
        body = await self.store.read(self.store.list_missing, external_id_filter(request))
        return json_response(200, body)

    async def post_result(self, request: web.Request, account: int) -> web.StreamResponse:
        f = self._fields(await self._body(request), {"date": "datetime", "result": "json"})
        item = await self.store.call(self.store.add_result, account, f["date"], f["result"])
        if not isinstance(f["result"], dict):
            # The platform saves the row, then fails rendering it: a 500 page, a poison row.
            raise ServerCrash(f"result of account {account} is not an object")
        return json_response(201, item)

    async def post_feedback(self, request: web.Request, account: int) -> web.StreamResponse:
        f = self._fields(
            await self._body(request), {"video": "str", "date": "datetime", "comment": "str"}
        )
        item = await self.store.call(
            self.store.add_feedback, account, f["date"], f["video"], f["comment"]
        )
        return json_response(201, item)

    async def post_missing(self, request: web.Request, account: int) -> web.StreamResponse:
        f = self._fields(await self._body(request), {"date": "datetime", "video": "str"})
        item = await self.store.call(self.store.add_missing, account, f["date"], f["video"])
        return json_response(201, item)

    async def post_event(self, request: web.Request, account: int) -> web.StreamResponse:
        f = self._fields(await self._body(request), {"user": "int", "event": "json"})
        try:
            item = await self.store.call(self.store.add_event, account, f["user"], f["event"])
        except BadRequest as exc:
            return json_response(400, exc.body)
        return json_response(201, item)
