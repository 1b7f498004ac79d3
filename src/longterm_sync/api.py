"""The one client of the platform's REST routes (see docs/PROTOCOL.md for the server's contract).

Every command talks to the platform through :class:`PlatformClient`, so the platform's quirks
are handled in one place:

- one aiohttp session whose connector holds at most ``limits.rest_concurrency`` connections
  (gunicorn closes every connection after one response, so a pool of open sockets buys nothing;
  the limit is what protects the server's workers);
- ``Authorization: Token``, and a trailing slash on every route (without it the server answers
  301 and a redirected POST turns into a GET);
- datetimes in queries percent-encoded (an unencoded ``+`` reaches the server as a space);
- bodies decoded with orjson, large ones off the event loop;
- errors classified where they happen: GETs are retried on connection errors, timeouts,
  resets and 5xx (:mod:`longterm_sync.retry`); 401 is :class:`~errors.AuthError` naming the
  server, 404 is :class:`~errors.RouteError`; a 5xx that outlives its retries is
  :class:`~errors.TransientError` naming the participant or window (``item``) that failed,
  so the pipeline can record it and go on with the others. POSTs are never retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from .config import Limits, ServerProfile, mask_token
from .errors import AuthError, ConnectError, ProtocolError, RouteError, TransientError
from .retry import Exhausted, Retryable, RetryPolicy, with_retries
from .timeutil import format_server_datetime
from .windows import Window, split_window

log = logging.getLogger("longterm_sync.api")

WATCH_RESULTS = "watch-results"
FEEDBACK_COMMENTS = "feedback-comments"
MISSING_VIDEOS = "missing-videos"
USERS = "users"
SCHEDULES = "users/schedules"
UPDATE_SCHEDULE = "users/update_schedule"

# Parse bodies larger than this in a worker thread instead of on the event loop.
THREAD_PARSE_BYTES = 256 * 1024
# Longest query string sent for an external_id filter (nginx's default header buffer is 8 KiB).
MAX_QUERY_CHARS = 4000
READ_BUFSIZE = 1 << 20


class ResponseTooLarge(ProtocolError):
    """An answer over ``[limits] max_response_mb``: not retried; a window is split instead."""


class HttpStatusError(ProtocolError):
    """An answer with a status the request cannot use (400, 405, 415, a POST's 500, ...)."""

    def __init__(self, message: str, *, status: int, body: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body


def route_path(route: str) -> str:
    """``watch-results`` -> ``/api/watch-results/``; a path starting with ``/`` is kept."""
    path = route if route.startswith("/") else "/api/" + route.strip("/")
    return path if path.endswith("/") else path + "/"


def encode_query(params: Mapping[str, str]) -> str:
    """Percent-encode a query so that ``+`` in an offset survives (``%2B01:00``).

    Commas stay literal: the server splits ``external_id=a,b`` on them.
    """
    return "&".join(
        f"{quote(str(k), safe='')}={quote(str(v), safe=',:')}" for k, v in params.items()
    )


def date_param(value: datetime, profile: ServerProfile) -> str:
    return format_server_datetime(value, profile.tz)


_HTML_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)


def _snippet(body: bytes, limit: int = 160) -> str:
    """A short, one-line view of a body; an HTML error page is named by its title."""
    title = _HTML_TITLE.search(body[:4096]) if b"<" in body[:200] else None
    if title:
        return " ".join(title.group(1).decode("utf-8", "replace").split())
    text = body[:limit].decode("utf-8", "replace")
    return " ".join(text.split()) + ("..." if len(body) > limit else "")


def _detail(body: bytes) -> str:
    """The ``detail`` of a DRF error body, else a short snippet of the body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _snippet(body)
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return _snippet(body)


async def decode_json(body: bytes) -> Any:
    if len(body) > THREAD_PARSE_BYTES:
        return await asyncio.to_thread(orjson.loads, body)
    return orjson.loads(body)


async def decode_list(body: bytes, route: str) -> list[Any]:
    """A list route's answer as rows; anything but a JSON list is a ProtocolError."""
    try:
        data = await decode_json(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"/api/{route}/ sent invalid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProtocolError(f"/api/{route}/ did not answer a list")
    return data


class PlatformClient:
    """A session with one platform server; use as ``async with PlatformClient(...) as c``."""

    def __init__(self, profile: ServerProfile, limits: Limits) -> None:
        self.profile = profile
        self.limits = limits
        self.base = URL(profile.url.rstrip("/"))
        self.policy = RetryPolicy.from_limits(limits)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.bytes_received = 0
        self.retried = 0

    def __repr__(self) -> str:
        return (
            f"PlatformClient({self.profile.url}, token={mask_token(self.profile.token)}, "
            f"{self.requests} requests, {self.retried} retried)"
        )

    async def __aenter__(self) -> PlatformClient:
        token = self.profile.require_token()
        connector = aiohttp.TCPConnector(
            limit=self.limits.rest_concurrency, force_close=True, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(
                total=self.limits.read_timeout,
                connect=self.limits.connect_timeout,
                sock_read=self.limits.idle_timeout,
            ),
            read_bufsize=READ_BUFSIZE,
            auto_decompress=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("PlatformClient used outside 'async with'")
        return self._session

    def url(self, route: str, params: Mapping[str, str] | None = None) -> URL:
        text = str(self.base) + route_path(route)
        if params:
            text += "?" + encode_query(params)
        return URL(text, encoded=True)

    # -- the transport: one GET with classification, retried ---------------------------------

    async def get_bytes(
        self, route: str, params: Mapping[str, str] | None = None, *, item: str = ""
    ) -> bytes:
        """The raw JSON body of a GET, retried; for callers that parse it themselves."""
        url = self.url(route, params)
        what = f"GET {url.path}"
        attempts = 0

        async def attempt() -> bytes:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.retried += 1
            return await self._get_once(url)

        try:
            return await with_retries(attempt, self.policy, what=what)
        except Exhausted as exc:
            if exc.last.connect:
                raise ConnectError(
                    f"cannot reach {self.profile.url}: {exc.last.cause}",
                    hint=f"after {exc.attempts} attempts; check --server and the network",
                ) from None
            where = f"{item}: " if item else ""
            raise TransientError(f"{where}{what} failed: {exc}") from None

    async def _get_once(self, url: URL) -> bytes:
        self.requests += 1
        log.debug("GET %s", url.path_qs)
        try:
            async with self.session.get(url, allow_redirects=False) as resp:
                body = await self._read_capped(resp, url)
                status = resp.status
                ctype = resp.content_type
                location = resp.headers.get("Location", "")
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError) as exc:
            raise await self._not_retried(url, exc, "TLS failed for") from None
        except aiohttp.ClientConnectorError as exc:
            if _is_tls(exc.os_error):
                raise await self._not_retried(url, exc.os_error, "TLS failed for") from None
            raise Retryable(f"{exc.os_error.strerror or exc}", connect=True) from exc
        except aiohttp.ClientResponseError as exc:  # not HTTP at all (e.g. TLS to plain HTTP)
            raise await self._not_retried(url, exc, "no HTTP answer from") from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise Retryable(f"connection broken mid-answer ({type(exc).__name__})") from exc
        except aiohttp.ClientOSError as exc:
            raise Retryable(f"connection error: {exc.strerror or exc}") from exc
        except TimeoutError as exc:
            raise Retryable("timed out") from exc
        except aiohttp.ClientError as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc
        self.bytes_received += len(body)
        if status == 200:
            if ctype != "application/json":
                raise ProtocolError(
                    f"{self.profile.url} answered {ctype or 'no content type'} instead of JSON "
                    f"for {url.path}: {_snippet(body, 80)}",
                    hint="is --server the platform's address?",
                )
            return body
        if 300 <= status < 400:
            # Never followed: a redirect to another scheme or host would drop the token
            # (or send it where it should not go); the address itself needs fixing.
            raise ProtocolError(
                f"{self.profile.url} redirects {url.path} ({status}) to {location or '?'}",
                hint="put the address it redirects to in --server or the profile's url",
            )
        self._raise_for_status(status, body, url, method="GET")
        raise AssertionError("unreachable")

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: URL) -> bytes:
        """The body, refused as soon as it passes ``max_response_mb`` (never held whole)."""
        cap = self.limits.max_response_mb * 1_000_000
        length = resp.content_length
        if length is not None and length > cap:
            raise self._too_large(url, length)
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(READ_BUFSIZE):
            total += len(chunk)
            if total > cap:
                raise self._too_large(url, total)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: URL, size: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"GET {url.path} answered more than [limits] max_response_mb "
            f"({self.limits.max_response_mb} MB; {size / 1e6:.0f} MB seen)"
        )

    async def _not_retried(self, url: URL, exc: BaseException, what: str) -> ProtocolError:
        """A TLS or protocol failure: not retried (another attempt fails the same way); one
        line naming the exact URL, suggesting ``http://`` when the same address answers it."""
        reason = " ".join(str(exc).split())[:160]
        hint = "check the address, the port and the server's TLS certificate"
        if url.scheme == "https" and await _answers_http(url, self.limits.connect_timeout):
            hint = f"it answers plain HTTP: use --server={_with_http(self.profile.url)}"
        return ProtocolError(f"{what} {url.with_query(None)}: {reason}", hint=hint)

    def _raise_for_status(self, status: int, body: bytes, url: URL, *, method: str) -> None:
        if status == 401:
            raise AuthError(
                f"the token {mask_token(self.profile.token)} was rejected by "
                f"{self.profile.name} ({self.profile.url}): {_detail(body)}",
                hint=f"check {self.profile.token_source}",
            )
        if status == 404:
            raise RouteError(
                f"{self.profile.url} has no route {url.path} (404)",
                hint="wrong --server? the platform's REST routes live under /api/",
            )
        if status >= 500 and method == "GET":
            raise Retryable(f"server error {status}: {_snippet(body, 60)}")
        raise HttpStatusError(
            f"{method} {url.path} answered {status}: {_detail(body)}",
            status=status,
            body=body.decode("utf-8", "replace"),
        )

    async def get_json(
        self, route: str, params: Mapping[str, str] | None = None, *, item: str = ""
    ) -> Any:
        body = await self.get_bytes(route, params, item=item)
        try:
            return await decode_json(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(
                f"{self.profile.url}{route_path(route)} sent invalid JSON: {exc}"
            ) from None

    async def post_json(self, route: str, body: Any) -> Any:
        """POST once (never retried: the platform would apply it twice)."""
        url = self.url(route)
        data = orjson.dumps(body)
        self.requests += 1
        log.debug("POST %s (%d bytes)", url.path, len(data))
        try:
            async with self.session.post(
                url,
                data=data,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
            ) as resp:
                answer = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot reach {self.profile.url}: {exc.os_error.strerror or exc}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(
                f"POST {url.path} interrupted ({type(exc).__name__}); it may or may not "
                "have been applied"
            ) from None
        self.bytes_received += len(answer)
        if status in (200, 201):
            try:
                return await decode_json(answer)
            except orjson.JSONDecodeError:
                raise ProtocolError(f"POST {url.path} answered invalid JSON") from None
        self._raise_for_status(status, answer, url, method="POST")
        raise AssertionError("unreachable")

    # -- the routes -----------------------------------------------------------------------

    async def users(self) -> list[str]:
        """Every account's username (``external_id``), the operator's own included."""
        data = await self.get_json(USERS, item="participant list")
        if not isinstance(data, list):
            raise ProtocolError(f"{self.profile.url}/api/users/ did not answer a list")
        return [str(row.get("external_id", "")) for row in data if isinstance(row, dict)]

    async def schedules(self, external_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The server's ``{"id", "schedule"}`` items: all of them, or only these participants.

        An empty ``external_ids`` asks for nobody (the server would read an empty filter as
        "everybody"); long id lists are split so that no query exceeds the server's limits.
        """
        if external_ids is None:
            return await self._schedule_rows({}, "schedules")
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(list(external_ids), MAX_QUERY_CHARS):
            rows.extend(await self._schedule_rows({"external_id": ",".join(chunk)}, "schedules"))
        return rows

    async def _schedule_rows(self, params: dict[str, str], item: str) -> list[dict[str, Any]]:
        data = await self.get_json(SCHEDULES, params, item=item)
        if not isinstance(data, list):
            raise ProtocolError(f"{self.profile.url}/api/users/schedules/ did not answer a list")
        return [row for row in data if isinstance(row, dict)]

    async def update_schedule(self, schedule: dict[str, Any]) -> list[dict[str, Any]]:
        """Create or merge one participant's schedule; the server answers the merged entries."""
        data = await self.post_json(UPDATE_SCHEDULE, {"schedule": schedule})
        if not isinstance(data, list):
            raise ProtocolError("update_schedule did not answer a list of entries")
        return data

    def list_params(
        self, external_id: str | None, start: datetime | None, stop: datetime | None
    ) -> dict[str, str]:
        """The query of a list route; ``external_id=None`` asks for every participant."""
        params = {} if external_id is None else {"external_id": external_id}
        if start is not None:
            params["start_date"] = date_param(start, self.profile)
        if stop is not None:
            params["stop_date"] = date_param(stop, self.profile)
        return params

    async def list_route_bytes(
        self, route: str, external_id: str, start: datetime | None, stop: datetime | None
    ) -> bytes:
        """One window of a list route (strict bounds: ``start < date < stop``), unparsed."""
        item = window_label(external_id, start, stop, self.profile)
        params = self.list_params(external_id, start, stop)
        return await self.get_bytes(route, params, item=item)

    async def list_everyone_bytes(
        self, route: str, start: datetime | None, stop: datetime | None
    ) -> bytes:
        """Every participant's rows of a list route in one request, unparsed: for routes
        whose rows are small (feedback), one request beats one per participant."""
        item = f"every participant, {window_span(start, stop, self.profile)}"
        return await self.get_bytes(route, self.list_params(None, start, stop), item=item)

    async def list_route_split(
        self,
        route: str,
        external_id: str,
        start: datetime | None,
        stop: datetime | None,
        *,
        lo: datetime | None = None,
        hi: datetime | None = None,
    ) -> list[bytes]:
        """One window's answer, or its halves' answers (recursively, down to one day) when
        it is over ``max_response_mb``: each body in memory is bounded by the cap. ``lo`` and
        ``hi`` bound where rows can be, to cut an open-ended window (see split_window)."""
        try:
            return [await self.list_route_bytes(route, external_id, start, stop)]
        except ResponseTooLarge as exc:
            halves = split_window(Window(start, stop), lo=lo, hi=hi)
            if halves is None:
                label = window_label(external_id, start, stop, self.profile)
                raise ResponseTooLarge(f"{label}: {exc}, even for one day") from None
            log.info("%s: answer too large, fetching it in two halves", route)
            bodies: list[bytes] = []
            for half in halves:
                bodies += await self.list_route_split(
                    route, external_id, half.start, half.stop, lo=lo, hi=hi
                )
            return bodies

    async def list_route(
        self, route: str, external_id: str, start: datetime | None, stop: datetime | None
    ) -> list[dict[str, Any]]:
        body = await self.list_route_bytes(route, external_id, start, stop)
        return await decode_list(body, route)

    async def missing_videos(self, external_id: str) -> list[dict[str, Any]]:
        """The server ignores date bounds on this route, so there is nothing to window."""
        return await self.list_route(MISSING_VIDEOS, external_id, None, None)


def _is_tls(error: BaseException | None) -> bool:
    import ssl

    return isinstance(error, ssl.SSLError)


def _with_http(url: str) -> str:
    return "http://" + url.split("://", 1)[-1]


async def _answers_http(url: URL, within_s: float) -> bool:
    """Whether the host answers plain HTTP on the same port. A session of its own, so the
    token is never sent over the unencrypted probe."""
    probe = url.with_scheme("http").with_path("/").with_query(None)
    if url.explicit_port is None:
        probe = probe.with_port(443)
    try:
        async with (
            aiohttp.ClientSession() as bare,
            bare.get(
                probe,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=min(5.0, within_s)),
            ),
        ):
            return True
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def window_label(
    external_id: str, start: datetime | None, stop: datetime | None, profile: ServerProfile
) -> str:
    """How a failed window is named in a summary: participant and its dates."""
    return f"participant {external_id}, window {window_span(start, stop, profile)}"


def window_span(start: datetime | None, stop: datetime | None, profile: ServerProfile) -> str:
    a = start.astimezone(profile.tz).strftime("%Y-%m-%d %H:%M") if start else "beginning"
    b = stop.astimezone(profile.tz).strftime("%Y-%m-%d %H:%M") if stop else "now"
    return f"{a} .. {b}"


def _chunks(ids: list[str], max_chars: int) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for ext in ids:
        if current and size + len(ext) + 1 > max_chars:
            out.append(current)
            current, size = [], 0
        current.append(ext)
        size += len(ext) + 1
    if current:
        out.append(current)
    return out
