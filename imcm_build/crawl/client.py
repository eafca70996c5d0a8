"""A polite HTTP client for Douban book pages: pacing, retries, block detection, host allow-list.

* One request at a time (the crawler is single-threaded) and at least ``delay + U(0, jitter)`` seconds
  between the end of one request and the start of the next.
* Timeouts, connection errors, truncated bodies, 429, 5xx, off-site redirects and pages that are not what
  the URL should serve (a broken or cut page) are retried with exponential backoff plus jitter;
  ``Retry-After`` is honoured up to ``retry_after_max``.
* 403, the login wall and captcha pages are never retried: ``fetch`` raises :class:`CrawlBlocked`.
* Redirects are followed by hand and only to allowed hosts; a redirect to a login/security page (on any
  host) is a block and is not followed, any other off-site target is refused.
* Every response received is handed to ``on_discarded`` unless it is the one ``fetch`` returns, so the
  caller can archive failed and blocked responses too.

The session cookie (if any) is sent as a ``Cookie`` header and kept nowhere else: it is not part of any
repr, message or report, and the archive strips it from the stored request. Douban repeats a visitor's
``bid`` and ``ck`` values in its pages, so every cookie value sent (the user's and those the site set) is
replaced by ``REDACTED`` in the bodies the client returns, before anything can archive them (whole values of
4+ characters with a letter: a digits-only value such as the city id in ``ll`` is no secret).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import requests

from imcm_build.crawl.archive import Exchange

log = logging.getLogger("imcm_build.crawl")
DEFAULT_USER_AGENT = "imcm-toolkit/0.1 (+research dataset rebuild; contact: set --user-agent)"
DOUBAN_BOOK_HOST = "book.douban.com"
MAX_REDIRECTS = 5
BLOCK_KINDS = ("http_403", "login_wall", "captcha")
# Where Douban sends a client it has blocked or wants logged in.
_LOGIN_HOSTS = frozenset({"accounts.douban.com", "sec.douban.com"})
_LOGIN_PATH = re.compile(r"/(login|sec|misc/sorry|passport)\b|^/b$", re.IGNORECASE)
_HTML_END = re.compile(rb"</html\s*>\s*$", re.IGNORECASE)
REDACTED = b"REDACTED"
MIN_REDACTED_LENGTH = 4  # Douban's shortest secret is its 4-character `ck`
# Digits-only cookie values (a city id in `ll`, counters) are no secret and could match a number in the text.
_SECRET_LOOKING = re.compile(r"[A-Za-z]")


class FetchError(Exception):
    """A URL that could not be fetched; ``kind`` is a short machine-friendly reason."""

    def __init__(self, url: str, kind: str, detail: str) -> None:
        super().__init__(f"{url}: {kind}: {detail}")
        self.url, self.kind, self.detail = url, kind, detail


class RetryableError(FetchError):
    """Worth another try after a pause (``retry_after`` seconds if the server said so)."""

    def __init__(self, url: str, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(url, kind, detail)
        self.retry_after = retry_after


class PermanentError(FetchError):
    """Not worth retrying in this run (404, too many retries, a disallowed URL...)."""


class CrawlBlocked(FetchError):
    """Douban refuses us (403, login wall, captcha): stop the crawl, keep the state, resume later."""


@dataclass
class FetchResult:
    exchange: Exchange
    kind: str | None  # the page kind the classifier saw (None when not classified)
    attempts: int


@dataclass
class ClientStats:
    requests: int = 0
    errors: Counter = field(default_factory=Counter)
    retries: int = 0
    waited_seconds: float = 0.0


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default_classifier() -> Callable[[bytes, str], str]:
    from imcm_build.crawl.parse import classify_page

    return classify_page


def _kind_name(kind: object) -> str:
    return str(getattr(kind, "value", kind))


def _split_checked(url: str) -> SplitResult:
    """``urlsplit(url)``, raising ValueError for a port that is not a number in 0-65535 as well."""
    parts = urlsplit(url)
    parts.port  # noqa: B018 - the property raises
    return parts


def _redact_whole_value(match: re.Match[bytes]) -> bytes:
    """REDACTED for a match that is not the tail of a longer word (the pattern checks what follows)."""
    start = match.start()
    return match.group(0) if start and match.string[start - 1:start].isalnum() else REDACTED


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def is_login_redirect(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "") in _LOGIN_HOSTS or bool(_LOGIN_PATH.search(parts.path))


class PoliteClient:
    """Fetches one URL at a time from an allow-list of hosts, politely; see the module docstring."""

    def __init__(
        self,
        allowed_hosts: Iterable[str] = (DOUBAN_BOOK_HOST,),
        user_agent: str = DEFAULT_USER_AGENT,
        cookie: str | None = None,
        delay: float = 5.0,
        jitter: float = 2.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        retry_after_max: float = 600.0,
        on_discarded: Callable[[Exchange, str], None] | None = None,
        classify: Callable[[bytes, str], object] | None = None,
        may_fetch: Callable[[str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if delay < 0 or jitter < 0 or timeout <= 0 or max_retries < 0:
            raise ValueError("delay and jitter must be >= 0, timeout > 0 and max_retries >= 0")
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.delay, self.jitter, self.timeout = delay, jitter, timeout
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, backoff_base, backoff_max
        self.retry_after_max = retry_after_max
        self.on_discarded = on_discarded or (lambda exchange, outcome: None)
        self._classify = classify
        self._may_fetch = may_fetch or (lambda url: True)  # robots.txt, asked again for every redirect target
        self._redaction: tuple[frozenset[str], tuple[re.Pattern[bytes], ...]] = (frozenset(), ())
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()
        self._not_before = 0.0
        self.current_delay = delay
        self.stats = ClientStats()
        self.session = requests.Session()
        self.session.trust_env = False  # the environment is read once per origin instead: see _environment_for
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        self.session.headers["User-Agent"] = user_agent
        if cookie:
            self.session.headers["Cookie"] = cookie

    def __repr__(self) -> str:  # never shows the cookie
        return f"PoliteClient(hosts={sorted(self.allowed_hosts)}, delay={self.delay}, jitter={self.jitter})"

    def close(self) -> None:
        self.session.close()

    # -- pacing ---------------------------------------------------------------------------------------
    def _wait_turn(self) -> None:
        pause = self._not_before - self._clock()
        if pause > 0:
            self.stats.waited_seconds += pause
            self._sleep(pause)

    def seconds_until_next(self) -> float:
        """How long the next request will have to wait for its turn."""
        return max(0.0, self._not_before - self._clock())

    def _schedule_next(self, extra_wait: float = 0.0) -> None:
        polite = self.delay + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
        self.current_delay = max(polite, extra_wait)
        self._not_before = self._clock() + self.current_delay

    def backoff_seconds(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based), at least Retry-After."""
        backoff = min(self.backoff_max, self.backoff_base * 2**attempt)
        backoff += self._rng.uniform(0, self.backoff_base) if self.backoff_base else 0.0
        return backoff if retry_after is None else max(backoff, self.retry_after_wait(retry_after))

    def retry_after_wait(self, retry_after: float) -> float:
        """The wait a Retry-After asks for, up to ``retry_after_max`` (a longer request is logged)."""
        if retry_after > self.retry_after_max:
            log.warning("the server asked to wait %.0f s (Retry-After); waiting the maximum of %.0f s "
                        "(--retry-after-max)", retry_after, self.retry_after_max)
        return min(retry_after, self.retry_after_max)

    # -- one HTTP exchange ----------------------------------------------------------------------------
    def check_allowed(self, url: str) -> None:
        try:
            parts = _split_checked(url)
        except ValueError as error:
            raise PermanentError(url[:200], "invalid_url", str(error)) from None
        if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in self.allowed_hosts:
            raise PermanentError(url, "host_not_allowed", f"only {', '.join(sorted(self.allowed_hosts))} may be fetched")

    def _environment_for(self, url: str) -> dict[str, Any]:
        """What requests reads from the environment for ``url`` (proxies, CA bundle, .netrc login).

        requests reads it again on every request (a walk over ``os.environ``, a .netrc lookup, a stat of the
        CA bundle); here it is read once per origin, so HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE and
        .netrc still apply, as they stood when the crawl reached that origin.
        """
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._environment:
            with requests.Session() as reader:  # a default session trusts the environment
                settings = reader.merge_environment_settings(url, {}, None, None, None)
            if parts.scheme == "http":  # no TLS: a CA bundle path would only cost a stat() per request
                settings["verify"] = True
            settings["auth"] = requests.utils.get_netrc_auth(url)
            self._environment[origin] = settings
        return self._environment[origin]

    def _prepare(self, url: str, auth: Any) -> requests.PreparedRequest:  # noqa: ANN401 - requests' auth
        """The GET request ``Session.get`` would send (session headers and cookies, .netrc login), without
        its per-request merging of settings that never change during a crawl."""
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url, headers=self.session.headers, cookies=self.session.cookies,
                        auth=auth)
        return request

    def _secret_values(self) -> frozenset[str]:
        """The cookie values this client sends: the user's cookie and those the site has set."""
        values = set(self.session.cookies.values())
        try:
            values.update(morsel.value for morsel in SimpleCookie(self.session.headers.get("Cookie", "")).values())
        except CookieError:
            values.update(part.partition("=")[2] for part in self.session.headers.get("Cookie", "").split(";"))
        values = {value.strip().strip('"') for value in values if value}
        return frozenset(value for value in values if len(value) >= MIN_REDACTED_LENGTH and _SECRET_LOOKING.search(value))

    def _redact(self, body: bytes) -> bytes:
        """``body`` with every cookie value sent (also percent-encoded) replaced by REDACTED."""
        values = self._secret_values()
        if values != self._redaction[0]:
            forms = sorted({form for value in values for form in (value, quote(value, safe=""))}, key=len, reverse=True)
            # one literal pattern per form: re scans for a literal prefix ~10x faster than for an alternation
            patterns = tuple(re.compile(re.escape(form.encode("utf-8")) + rb"(?![A-Za-z0-9])") for form in forms)
            self._redaction = (values, patterns)
        for pattern in self._redaction[1]:
            body = pattern.sub(_redact_whole_value, body)
        return body

    def _exchange(self, url: str) -> Exchange:
        self.check_allowed(url)
        environment = self._environment_for(url)
        try:
            request = self._prepare(url, environment["auth"])
        except ValueError as error:  # requests' InvalidURL is one
            raise PermanentError(url, "invalid_url", str(error)[:200]) from None
        self._wait_turn()
        self.stats.requests += 1
        fetched_at = utc_now_iso()
        try:
            # the session's transport adapter, not Session.send: redirects are ours to judge (Session.send
            # would parse a Location even when not following it, and fail on a malformed one)
            response = self.session.get_adapter(url).send(
                request, stream=False, timeout=self.timeout, verify=environment["verify"],
                cert=environment["cert"], proxies=environment["proxies"],
            )
            requests.cookies.extract_cookies_to_jar(self.session.cookies, request, response.raw)
            body = response.content
        except requests.Timeout as error:
            raise RetryableError(url, "timeout", type(error).__name__) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as error:
            raise RetryableError(url, "truncated", f"incomplete body ({type(error).__name__})") from None
        except requests.ConnectionError as error:
            raise RetryableError(url, "connection_error", type(error).__name__) from None
        finally:
            self._schedule_next()
        exchange = Exchange(
            url=url,
            method="GET",
            request_headers=dict(response.request.headers),
            status=response.status_code,
            reason=response.reason or "",
            response_headers=dict(response.headers),
            body=self._redact(body),
            fetched_at=fetched_at,
            http_version="HTTP/1.0" if response.raw.version == 10 else "HTTP/1.1",
        )
        declared = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if declared and declared.isdigit() and not encoded and int(declared) != len(body):
            self.on_discarded(exchange, "retry:truncated")
            raise RetryableError(url, "truncated", f"Content-Length {declared} but {len(body)} bytes")
        return exchange

    def _follow(self, url: str) -> Exchange:
        """GET ``url``, following same-host redirects by hand; return the final exchange."""
        for _ in range(MAX_REDIRECTS + 1):
            exchange = self._exchange(url)
            if exchange.status not in (301, 302, 303, 307, 308):
                return exchange
            location = exchange.response_headers.get("Location")
            if not location:
                self.on_discarded(exchange, "refused:redirect_without_location")
                raise RetryableError(url, "bad_redirect", f"HTTP {exchange.status} without Location")
            try:
                target = urljoin(url, location)
                _split_checked(target)
            except ValueError:
                self.on_discarded(exchange, "refused:bad_redirect")
                raise RetryableError(url, "bad_redirect", f"HTTP {exchange.status} to {location[:200]!r}") from None
            if is_login_redirect(target):  # not followed: robots.txt disallows Douban's /sec/ pages anyway
                self.on_discarded(exchange, "blocked:login_wall")
                raise CrawlBlocked(url, "login_wall", f"redirected to the login/security page {target}")
            if (urlsplit(target).hostname or "").lower() not in self.allowed_hosts:
                self.on_discarded(exchange, "refused:offsite_redirect")
                raise RetryableError(url, "offsite_redirect", f"refused redirect to off-site {target}")
            if not self._may_fetch(target):
                self.on_discarded(exchange, "refused:robots_disallowed")
                raise PermanentError(url, "robots_disallowed", f"redirected to {target}, which robots.txt disallows")
            self.on_discarded(exchange, "redirect")
            url = target
        raise PermanentError(url, "too_many_redirects", f"more than {MAX_REDIRECTS} redirects")

    # -- judging a response ---------------------------------------------------------------------------
    def _judge(self, requested: str, exchange: Exchange, expect: str | None) -> str | None:
        """Raise for anything but a usable 200 page; return the page kind the classifier saw."""
        status, url = exchange.status, exchange.url
        if status == 403:
            self.on_discarded(exchange, "blocked:http_403")
            raise CrawlBlocked(requested, "http_403", f"HTTP 403 Forbidden from {url}")
        if status == 429 or status >= 500:
            self.on_discarded(exchange, f"retry:http_{status}")
            retry_after = parse_retry_after(exchange.response_headers.get("Retry-After"))
            raise RetryableError(requested, f"http_{status}", f"HTTP {status} from {url}", retry_after)
        if status != 200:
            self.on_discarded(exchange, f"failed:http_{status}")
            raise PermanentError(requested, f"http_{status}", f"HTTP {status} from {url}")
        if expect is None:
            return None
        if self._classify is None:
            self._classify = _default_classifier()
        kind = _kind_name(self._classify(exchange.body, url))
        if kind in ("login_wall", "captcha") or (kind != expect and is_login_redirect(url)):
            kind = "captcha" if kind == "captcha" else "login_wall"
            self.on_discarded(exchange, f"blocked:{kind}")
            raise CrawlBlocked(requested, kind, f"{url} is a {kind.replace('_', ' ')} page")
        if not _HTML_END.search(exchange.body[-256:]):
            self.on_discarded(exchange, "retry:truncated")
            raise RetryableError(requested, "truncated", f"page from {url} does not end with </html>")
        if kind != expect:
            self.on_discarded(exchange, "retry:unexpected_page")
            raise RetryableError(requested, "unexpected_page", f"expected a {expect} page, got {kind}")
        return kind

    def fetch(self, url: str, expect: str | None = None) -> FetchResult:
        """Fetch ``url`` with retries; ``expect`` is the page kind (``PageKind`` value) it must be.

        Returns the usable 200 exchange (not passed to ``on_discarded``: the caller archives it).
        Raises CrawlBlocked (stop), PermanentError (give up on this URL), or RetryableError once
        ``max_retries`` retries are used up.
        """
        attempt = 0
        while True:
            try:
                exchange = self._follow(url)
                kind = self._judge(url, exchange, expect)
                return FetchResult(exchange, kind, attempt + 1)
            except RetryableError as error:
                self.stats.errors[error.kind] += 1
                if attempt >= self.max_retries:
                    if error.retry_after is not None:  # the server's wait applies to the next page too
                        self._schedule_next(self.retry_after_wait(error.retry_after))
                    raise
                self._schedule_next(self.backoff_seconds(attempt, error.retry_after))
                self.stats.retries += 1
                attempt += 1
            except FetchError as error:
                self.stats.errors[error.kind] += 1
                raise
