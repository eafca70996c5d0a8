"""A local Douban book site: a ThreadingHTTPServer on 127.0.0.1 serving pages rendered from records.

URL space (the paths of book.douban.com; `base_url` replaces https://book.douban.com):

    /robots.txt                      Douban-like rules (disallows /subject_search, /j/, ...)
    /tag/                            tag index, most frequent tag first
    /tag/<tag>?start=N&type=T        20 books per page sorted by id; empty from start=1000 on, like Douban
    /subject/<id>/                   a subject page of the 2021 or 2024 era (/subject/<id> redirects here)
    /works/<id>                      a works page (the works id is the subject id)
    /subject_search?search_text=Q    a search result page (robots.txt disallows it)
    /sec/b?r=<url>                   the login wall that the login_after fault redirects to

Like Douban, a page served to a visitor with a `bid` (or a logged-in `ck`) cookie repeats the value in its
body (an ad script's `browserId`, a vote link's `ck=`), so tests can check that it never reaches an archive.

`request_count` counts every request; fault counters (see faults.py) count only pages that can fault, so not
/robots.txt, not /sec/ and not requests refused for a missing cookie.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from imcm_build.records import Record, RecordError, Rejection, read_records
from imcm_build.simulator.faults import Fault, FaultInjector, FaultSpec, as_fault_spec
from imcm_build.simulator.render import ERA_CHOICES, SORT_TYPES, SiteRenderer, error_page, malformed

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
OFFSITE_HOST = "http://evil.example.com"
LOGIN_WALL_PATH = "/sec/b"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
LISTING_PATH = re.compile(r"/tag/([^/]+)")
SUBJECT_PATH = re.compile(r"/subject/(\d+)(/?)")
WORKS_PATH = re.compile(r"/works/(\d+)/?")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)
    close_after_half: bool = False  # send the full Content-Length, half the body, then close


def _echo_visitor_cookies(body: bytes, cookie_header: str) -> bytes:
    try:
        cookies = SimpleCookie(cookie_header)
    except CookieError:
        return body
    echoes = []
    if "bid" in cookies:
        echoes.append(f"<script>var _AD_PARAMS = {{browserId: '{quote(cookies['bid'].value)}'}};</script>")
    if "ck" in cookies:
        echoes.append(f'<a class="j a_vote" href="/j/vote?ck={quote(cookies["ck"].value)}">有用</a>')
    if not echoes or b"</body>" not in body:
        return body
    head, _, tail = body.rpartition(b"</body>")
    return head + "".join(echoes).encode() + b"</body>" + tail


def load_simulator_records(path: str | Path) -> list[Record]:
    """Read a records JSONL for the simulator; raise RecordError on the first rejected line."""
    records = []
    for item in read_records([path]):
        if isinstance(item, Rejection):
            raise RecordError(item.origin, item.reason, item.detail)
        records.append(item)
    return records


def _validated(records: Sequence[Record]) -> list[Record]:
    seen: dict[str, str] = {}
    for record in records:
        where = record.origin or f"record id {record.id!r}"
        if not record.id.isascii() or not record.id.isdigit():
            raise ValueError(f"{where}: a Douban subject id must be digits, got {record.id!r}")
        if record.id in seen:
            raise ValueError(f"{where}: duplicate subject id {record.id!r} (first at {seen[record.id]})")
        seen[record.id] = where
    return list(records)


class DoubanSimulator:
    """The local Douban; use as a context manager or call start()/stop()."""

    def __init__(self, records: Sequence[Record], faults: str | FaultSpec | None = None, era: str = "mixed",
                 port: int = 0, seed: int = 0, require_cookie: str | None = None) -> None:
        if era not in ERA_CHOICES:
            raise ValueError(f"unknown era {era!r}: expected one of {', '.join(ERA_CHOICES)}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range 0-65535")
        self.records = _validated(records)
        self.fault_spec = as_fault_spec(faults)
        self.era, self.port, self.seed = era, port, seed
        self.require_cookie = require_cookie
        self.request_log: list[tuple[str, int]] = []  # (path with query, status), in arrival order
        self.request_headers: list[dict[str, str]] = []  # per request, Cookie left out
        self._lock = threading.Lock()
        self._request_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._renderer: SiteRenderer | None = None
        self._faults = FaultInjector(self.fault_spec)

    # ----- lifecycle -----

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started: call start() or use it as a context manager")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    def start(self) -> DoubanSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        server = ThreadingHTTPServer((HOST, self.port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._renderer = SiteRenderer(self.records, self.base_url, era=self.era, seed=self.seed)
        self._faults = FaultInjector(self.fault_spec)
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="douban-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> DoubanSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def clear_block(self) -> None:
        """Lift a 403/login/captcha block; its `after=N` count starts again from zero."""
        self._faults.clear_block()

    # ----- requests -----

    def respond(self, target: str, headers: dict[str, str]) -> Response:
        """The response to one GET of `target` (path and query), faults included; logs the request."""
        with self._lock:
            self._request_count += 1
            self.request_headers.append({name: value for name, value in headers.items() if name.lower() != "cookie"})
        response = self._respond(target, headers)
        if response.status == 200 and response.content_type == HTML:
            response.body = _echo_visitor_cookies(response.body, headers.get("Cookie", ""))
        with self._lock:
            self.request_log.append((target, response.status))
        return response

    def _respond(self, target: str, headers: dict[str, str]) -> Response:
        path = urlsplit(target).path
        if path == "/robots.txt":
            return Response(200, self._site.robots_txt(), TEXT)
        if self.require_cookie is not None and not self._has_cookie(headers):
            return Response(403, error_page("403 Forbidden", "请求缺少有效的 bid cookie"))
        if path.startswith("/sec/"):
            return self._route(target)
        fault = self._faults.decide(target)
        if fault is None:
            return self._route(target)
        return self._faulty(fault, target)

    def _has_cookie(self, headers: dict[str, str]) -> bool:
        try:
            cookie = SimpleCookie(headers.get("Cookie", ""))
        except CookieError:
            return False
        return "bid" in cookie and cookie["bid"].value == self.require_cookie

    @property
    def _site(self) -> SiteRenderer:
        if self._renderer is None:
            raise RuntimeError("the simulator is not started")
        return self._renderer

    def _faulty(self, fault: Fault, target: str) -> Response:
        original = self.base_url + target
        if fault is Fault.FORBIDDEN:
            return Response(403, error_page("403 Forbidden", "你的 IP 访问过于频繁，已被暂时禁止访问。"))
        if fault is Fault.LOGIN:
            return Response(302, headers={"Location": f"{self.base_url}{LOGIN_WALL_PATH}?r={quote(original, safe='')}"})
        if fault is Fault.CAPTCHA:
            return Response(200, self._site.captcha_page(original, captcha_id=f"sim{self._faults.counted}"))
        if fault is Fault.TOO_MANY_REQUESTS:
            return Response(429, error_page("429 Too Many Requests", "请求过于频繁"), headers={"Retry-After": "1"})
        if fault is Fault.SERVER_ERROR:
            return Response(500, error_page("500 Internal Server Error", "服务器出错了"))
        if fault is Fault.UNAVAILABLE:
            return Response(503, error_page("503 Service Unavailable", "服务暂时不可用"))
        if fault is Fault.OFFSITE:
            return Response(302, headers={"Location": OFFSITE_HOST + target})
        if fault is Fault.REDIRECT:
            moved = target + ("&" if "?" in target else "?") + "redirected=1"
            return Response(301, headers={"Location": self.base_url + moved})
        if fault is Fault.SLOW:
            time.sleep(self.fault_spec.slow_seconds)
            return self._route(target)
        response = self._route(target)
        if fault is Fault.MALFORMED:
            response.body = malformed(response.body)
        elif fault is Fault.TRUNCATE and self.fault_spec.truncate_mode == "close":
            response.close_after_half = True
        elif fault is Fault.TRUNCATE:
            response.body = response.body[: len(response.body) // 2]
        return response

    def _route(self, target: str) -> Response:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/tag/":
            return Response(200, self._site.tag_index_page())
        if match := LISTING_PATH.fullmatch(path):
            return self._listing(unquote(match[1]), query)
        if match := SUBJECT_PATH.fullmatch(path):
            if not match[2]:
                return Response(301, headers={"Location": f"{self.base_url}/subject/{match[1]}/"})
            return self._for_record(match[1], self._site.subject_page)
        if match := WORKS_PATH.fullmatch(path):
            return self._for_record(match[1], self._site.works_page)
        if path == "/subject_search":
            return Response(200, self._site.search_page(query.get("search_text", [""])[0]))
        if path == LOGIN_WALL_PATH:
            return Response(200, self._site.login_wall_page(query.get("r", [""])[0]))
        return _not_found()

    def _listing(self, tag: str, query: dict[str, list[str]]) -> Response:
        start_text = query.get("start", ["0"])[0]
        sort_type = query.get("type", ["T"])[0]
        if not start_text.isdigit():
            return Response(400, error_page("400 Bad Request", f"start 必须是非负整数: {start_text!r}"))
        if sort_type not in SORT_TYPES:
            return Response(400, error_page("400 Bad Request", f"未知的排序方式: {sort_type!r}"))
        return Response(200, self._site.listing_page(tag, int(start_text), sort_type))

    def _for_record(self, subject_id: str, render: Callable[[Record], bytes]) -> Response:
        record = self._site.by_id.get(subject_id)
        return _not_found() if record is None else Response(200, render(record))


def _not_found() -> Response:
    return Response(404, error_page("页面不存在", "你要的东西不在这, 到别处看看吧。"))


def _handler_for(simulator: DoubanSimulator) -> type[BaseHTTPRequestHandler]:
    class DoubanHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dae"
        sys_version = ""
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(send_body=False)

        def _serve(self, send_body: bool) -> None:
            try:
                response = simulator.respond(self.path, dict(self.headers.items()))
            except Exception:
                log.exception("simulator failed on %s", self.path)
                response = Response(500, error_page("500 Internal Server Error", "simulator error"))
            try:
                self._write(response, send_body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. timed out on a slow page)

        def _write(self, response: Response, send_body: bool) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.close_after_half:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if send_body:
                body = response.body[: len(response.body) // 2] if response.close_after_half else response.body
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
            log.debug("%s %s", self.address_string(), format % args)

    return DoubanHandler
