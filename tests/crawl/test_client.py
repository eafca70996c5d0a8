"""PoliteClient against a scripted local HTTP server: pacing, retries, blocks, redirects, cookie hygiene."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imcm_build.crawl.client import (
    CrawlBlocked,
    PermanentError,
    PoliteClient,
    RetryableError,
    parse_retry_after,
)
from imcm_build.crawl.parse import classify_page

SUBJECT_HTML = (
    "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>三体 (豆瓣)</title></head><body>"
    "<h1><span property='v:itemreviewed'>三体</span></h1><div id='info'><span class='pl'>作者:</span> 刘慈欣</div>"
    "<div class='intro'><p>文化大革命如火如荼进行的同时。</p></div></body></html>\n"
).encode()
LOGIN_HTML = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>豆瓣 - 登录跳转页</title></head><body>"
    "<p>有异常请求从你的 IP 发出，请登录使用豆瓣。</p></body></html>"
).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = SUBJECT_HTML
    headers: dict[str, str] = field(default_factory=dict)
    declared_length: int | None = None  # a Content-Length larger than the body, then close: a cut response
    pause: float = 0.0


class ScriptedServer:
    """Serves, per path, a list of replies in order (the last one repeats); records every request."""

    def __init__(self, script: dict[str, list[Reply]]) -> None:
        self.script = {path: list(replies) for path, replies in script.items()}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                with server.lock:
                    server.requests.append((self.path, dict(self.headers)))
                    replies = server.script.get(self.path, [Reply(404, b"not found")])
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                time.sleep(reply.pause)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                length = reply.declared_length if reply.declared_length is not None else len(reply.body)
                self.send_header("Content-Length", str(length))
                if reply.declared_length is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(reply.body)
                if reply.declared_length is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def serve() -> Iterator:
    servers: list[ScriptedServer] = []

    def start(script: dict[str, list[Reply]]) -> ScriptedServer:
        server = ScriptedServer(script)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


class FakeTime:
    """A clock that only moves when the client sleeps, so pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(server: ScriptedServer, fake: FakeTime | None = None, **options: object) -> tuple[PoliteClient, list]:
    discarded: list[tuple[str, int, str]] = []
    fake = fake or FakeTime()
    settings = {"delay": 0.0, "jitter": 0.0, "backoff_base": 0.5, "max_retries": 3, "timeout": 5.0, **options}
    client = PoliteClient(
        allowed_hosts={"book.douban.com", "127.0.0.1"},
        on_discarded=lambda exchange, outcome: discarded.append((exchange.url, exchange.status, outcome)),
        classify=classify_page, sleep=fake.sleep, clock=fake.clock, **settings,
    )
    return client, discarded


def test_5xx_and_429_are_retried_with_backoff_and_retry_after(serve) -> None:
    server = serve({"/subject/1/": [Reply(503), Reply(429, b"slow down", {"Retry-After": "7"}), Reply(500), Reply()]})
    fake = FakeTime()
    client, discarded = make_client(server, fake)
    result = client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert result.exchange.status == 200 and result.attempts == 4
    assert [outcome for _, _, outcome in discarded] == ["retry:http_503", "retry:http_429", "retry:http_500"]
    # backoff 0.5*2^n + U(0, 0.5): first pause in [0.5, 1.0]; after the 429 at least its Retry-After of 7 s
    assert 0.5 <= fake.sleeps[0] <= 1.0
    assert fake.sleeps[1] >= 7.0
    assert 2.0 <= fake.sleeps[2] <= 2.5
    assert client.stats.retries == 3 and client.stats.errors == {"http_503": 1, "http_429": 1, "http_500": 1}


def test_retry_after_is_capped(serve) -> None:
    server = serve({"/subject/1/": [Reply(429, b"", {"Retry-After": "86400"}), Reply()]})
    fake = FakeTime()
    client, _ = make_client(server, fake, retry_after_max=30.0)
    client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert 30.0 <= fake.sleeps[0] <= 30.5


def test_retries_run_out_with_a_retryable_error(serve) -> None:
    server = serve({"/subject/1/": [Reply(502)]})
    client, _ = make_client(server, max_retries=2)
    with pytest.raises(RetryableError) as caught:
        client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert caught.value.kind == "http_502"
    assert server.paths() == ["/subject/1/"] * 3


@pytest.mark.parametrize(
    ("replies", "kind"),
    [
        ([Reply(403, b"forbidden")], "http_403"),
        ([Reply(302, b"", {"Location": "/sec/b?r=1"})], "login_wall"),
        ([Reply(302, b"", {"Location": "https://accounts.douban.com/passport/login"})], "login_wall"),
        ([Reply(200, LOGIN_HTML)], "login_wall"),
        ([Reply(200, b"<html><head><title>\xe8\xb1\x86\xe7\x93\xa3</title></head><body><form>"
                b"<img id='captcha_image' src='/c.jpg'><input name='captcha-solution'></form></body></html>")],
         "captcha"),
    ],
)
def test_blocks_stop_without_retrying(serve, replies: list[Reply], kind: str) -> None:
    server = serve({"/subject/1/": replies, "/sec/b?r=1": [Reply(200, LOGIN_HTML)]})
    client, discarded = make_client(server)
    with pytest.raises(CrawlBlocked) as caught:
        client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert caught.value.kind == kind
    assert server.paths().count("/subject/1/") == 1
    assert discarded[-1][2] == f"blocked:{kind}"


def test_offsite_redirect_is_refused_and_retried(serve) -> None:
    server = serve({"/subject/1/": [Reply(302, b"", {"Location": "http://evil.example.com/subject/1/"}), Reply()]})
    client, discarded = make_client(server)
    result = client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert result.exchange.url == server.base_url + "/subject/1/"
    assert discarded == [(server.base_url + "/subject/1/", 302, "refused:offsite_redirect")]
    assert client.stats.errors == {"offsite_redirect": 1}


def test_same_host_redirect_is_followed(serve) -> None:
    server = serve({"/subject/1": [Reply(301, b"", {"Location": "/subject/1/"})], "/subject/1/": [Reply()]})
    client, discarded = make_client(server)
    result = client.fetch(server.base_url + "/subject/1", expect="subject")
    assert result.exchange.url == server.base_url + "/subject/1/"
    assert [outcome for *_, outcome in discarded] == ["redirect"]


def test_cut_bodies_are_retried(serve) -> None:
    half = SUBJECT_HTML[: len(SUBJECT_HTML) // 2]
    server = serve({"/subject/1/": [Reply(200, half, declared_length=len(SUBJECT_HTML)), Reply(200, half), Reply()]})
    client, discarded = make_client(server)
    result = client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert result.exchange.body == SUBJECT_HTML and result.attempts == 3
    assert client.stats.errors == {"truncated": 2}
    assert [outcome for *_, outcome in discarded] == ["retry:truncated"]  # the honest cut page is archived


def test_timeouts_are_retried(serve) -> None:
    server = serve({"/subject/1/": [Reply(pause=1.5), Reply()]})
    client, _ = make_client(server, timeout=0.5)
    result = client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert result.attempts == 2 and client.stats.errors == {"timeout": 1}


def test_wrong_page_kind_is_retried(serve) -> None:
    listing = "<html><head><title>豆瓣图书标签: 小说</title></head><body><h1>豆瓣图书标签: 小说</h1></body></html>"
    server = serve({"/subject/1/": [Reply(200, listing.encode()), Reply()]})
    client, discarded = make_client(server)
    client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert [outcome for *_, outcome in discarded] == ["retry:unexpected_page"]


def test_not_found_is_permanent(serve) -> None:
    server = serve({})
    client, _ = make_client(server)
    with pytest.raises(PermanentError) as caught:
        client.fetch(server.base_url + "/subject/404/", expect="subject")
    assert caught.value.kind == "http_404" and len(server.requests) == 1


def test_other_hosts_are_never_fetched(serve) -> None:
    server = serve({})
    client, _ = make_client(server)
    with pytest.raises(PermanentError) as caught:
        client.fetch("https://www.example.com/subject/1/")
    assert caught.value.kind == "host_not_allowed" and client.stats.requests == 0


def test_polite_delay_with_jitter_between_requests(serve) -> None:
    server = serve({"/subject/1/": [Reply()], "/subject/2/": [Reply()], "/subject/3/": [Reply()]})
    fake = FakeTime()
    client, _ = make_client(server, fake, delay=5.0, jitter=2.0)
    for number in (1, 2, 3):
        client.fetch(f"{server.base_url}/subject/{number}/", expect="subject")
    assert len(fake.sleeps) == 2 and all(5.0 <= pause <= 7.0 for pause in fake.sleeps)
    assert len(set(fake.sleeps)) == 2  # jittered


def test_cookie_and_user_agent_are_sent_but_not_shown(serve) -> None:
    server = serve({"/subject/1/": [Reply()]})
    client, _ = make_client(server, cookie="dbcl2=SECRET-cookie-42", user_agent="tester/1.0 (me@example.org)")
    client.fetch(server.base_url + "/subject/1/", expect="subject")
    headers = server.requests[0][1]
    assert headers["Cookie"] == "dbcl2=SECRET-cookie-42"
    assert headers["User-Agent"] == "tester/1.0 (me@example.org)"
    assert "SECRET" not in repr(client)


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_proxy_settings_from_the_environment_still_apply(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client reads the environment once per origin rather than per request: a proxy must still be used."""
    proxy = serve({"http://book.douban.com/subject/1/": [Reply()], "http://book.douban.com/subject/2/": [Reply()]})
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.base_url)
    client, _ = make_client(proxy)
    for number in (1, 2):
        result = client.fetch(f"http://book.douban.com/subject/{number}/", expect="subject")
        assert result.exchange.body == SUBJECT_HTML
    assert proxy.paths() == ["http://book.douban.com/subject/1/", "http://book.douban.com/subject/2/"]
    monkeypatch.setenv("no_proxy", "book.douban.com")  # read once: the running client keeps its settings
    client.fetch("http://book.douban.com/subject/1/", expect="subject")
    assert len(proxy.paths()) == 3


def test_cookies_the_server_sets_are_sent_back(serve) -> None:
    """Douban hands a first visitor a `bid` cookie; like a browser, the client returns it afterwards."""
    server = serve({"/subject/1/": [Reply(headers={"Set-Cookie": "bid=FromServer1; Path=/"})],
                    "/subject/2/": [Reply()]})
    client, _ = make_client(server)
    for number in (1, 2):
        client.fetch(f"{server.base_url}/subject/{number}/", expect="subject")
    assert "Cookie" not in server.requests[0][1]
    assert server.requests[1][1]["Cookie"] == "bid=FromServer1"


def test_netrc_login_from_the_environment_is_sent(serve, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve({"/subject/1/": [Reply()]})
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password s3cret\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client, _ = make_client(server)
    result = client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert server.requests[0][1]["Authorization"] == "Basic " + base64.b64encode(b"reader:s3cret").decode()
    assert result.exchange.request_headers["Authorization"].startswith("Basic ")  # the archive strips it


def test_cookie_values_repeated_in_pages_are_redacted(serve) -> None:
    """Douban repeats the visitor's bid (and a logged-in ck) in its pages; no cookie value may be archived."""
    echo = SUBJECT_HTML.replace(b"</body>", b"<script>browserId = 'ServerBid123'; u='1234%3AUserSecret9';"
                                            b" v='/j/vote?ck=Xk9q'; other='Xk9qZ'; city=108288</script></body>")
    server = serve({"/subject/1/": [Reply(headers={"Set-Cookie": "bid=ServerBid123; Path=/"})],
                    "/subject/2/": [Reply(body=echo)]})
    client, _ = make_client(server, cookie='dbcl2="1234:UserSecret9"; ck=Xk9q; ll="108288"')
    first = client.fetch(f"{server.base_url}/subject/1/", expect="subject")
    second = client.fetch(f"{server.base_url}/subject/2/", expect="subject")
    assert first.exchange.body == SUBJECT_HTML
    body = second.exchange.body
    assert b"ServerBid123" not in body and b"UserSecret9" not in body and b"ck=Xk9q" not in body
    assert b"browserId = 'REDACTED'" in body and b"u='REDACTED'" in body and b"ck=REDACTED'" in body
    assert b"other='Xk9qZ'" in body  # only whole values: a longer word that starts like one stays
    assert b"city=108288" in body  # a digits-only value (Douban's city id) is no secret and may be in the text


@pytest.mark.parametrize("location", ["http://[bad/x", "http://127.0.0.1:99999/x"])
def test_an_invalid_redirect_address_is_refused_not_a_crash(serve, location: str) -> None:
    server = serve({"/subject/1/": [Reply(302, b"", {"Location": location})]})
    client, discarded = make_client(server, max_retries=1)
    with pytest.raises(RetryableError) as raised:
        client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert raised.value.kind == "bad_redirect" and client.stats.errors["bad_redirect"] == 2
    assert [outcome for _, _, outcome in discarded] == ["refused:bad_redirect"] * 2


def test_a_redirect_robots_txt_disallows_is_not_followed(serve) -> None:
    server = serve({"/subject/1/": [Reply(302, b"", {"Location": "/j/private"})], "/j/private": [Reply()]})
    client, discarded = make_client(server)
    client._may_fetch = lambda url: "/j/" not in url
    with pytest.raises(PermanentError) as raised:
        client.fetch(server.base_url + "/subject/1/", expect="subject")
    assert raised.value.kind == "robots_disallowed" and server.paths() == ["/subject/1/"]
    assert discarded[0][2] == "refused:robots_disallowed"


def test_retry_after_holds_the_next_page_even_when_retries_are_used_up(serve, caplog) -> None:
    server = serve({"/subject/1/": [Reply(429, b"slow down", {"Retry-After": "7"})], "/subject/2/": [Reply()],
                    "/subject/3/": [Reply(429, b"slow down", {"Retry-After": "3600"})]})
    fake = FakeTime()
    client, _ = make_client(server, fake, max_retries=0)
    with pytest.raises(RetryableError):
        client.fetch(server.base_url + "/subject/1/", expect="subject")
    client.fetch(server.base_url + "/subject/2/", expect="subject")
    assert fake.sleeps == [7.0]
    with pytest.raises(RetryableError), caplog.at_level("WARNING"):
        client.fetch(server.base_url + "/subject/3/", expect="subject")
    assert "asked to wait 3600 s" in caplog.text and client.seconds_until_next() == 600.0
