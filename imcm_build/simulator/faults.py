"""Fault injection for the local Douban simulator, deterministic by request counter.

A fault spec is a comma-separated list of `name=value` items:

    403_after=N        requests after the N-th get 403 Forbidden          } blocks: they persist until the
    login_after=N      ... get a 302 to the login-wall page (/sec/b)      } simulator stops or clear_block()
    captcha_after=N    ... get a 200 page holding a captcha form          } is called (which restarts the count)
    429_every=K        the K-th, 2K-th, ... request gets 429 with Retry-After: 1
    500_every=K        ... gets 500 Internal Server Error
    503_every=K        ... gets 503 Service Unavailable
    slow_every=K       ... is answered after `slow_seconds` (default 3.0)
    slow_seconds=S
    truncate_every=K   ... gets half its body; truncate_mode=honest (default: Content-Length of the cut body)
    truncate_mode=M        or close (Content-Length of the whole body, then the connection is closed early)
    malformed_every=K  ... gets broken HTML with status 200
    offsite_every=K    ... gets a 302 to http://evil.example.com/<same path>
    redirect_every=K   ... gets a 301 to the same page at another address on this host (<path>?redirected=1),
                       as Douban sends merged subjects to their surviving page

Only pages that can fault are counted (everything but /robots.txt and the /sec/ login wall). An every-K fault
is never served on the next request for the URL it was just served on, so a retry succeeds; the K-th request
is then served cleanly (the fault is skipped, not moved). When several every-K faults fall on one request, the
first in `EVERY_FAULT_ORDER` wins. A block wins over every-K faults.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

DEFAULT_SLOW_SECONDS = 3.0
TRUNCATE_MODES = ("honest", "close")


class Fault(str, enum.Enum):
    FORBIDDEN = "403"
    LOGIN = "login"
    CAPTCHA = "captcha"
    TOO_MANY_REQUESTS = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    SLOW = "slow"
    TRUNCATE = "truncate"
    MALFORMED = "malformed"
    OFFSITE = "offsite"
    REDIRECT = "redirect"


BLOCK_ORDER = (Fault.FORBIDDEN, Fault.LOGIN, Fault.CAPTCHA)
EVERY_FAULT_ORDER = (
    Fault.OFFSITE,
    Fault.REDIRECT,
    Fault.TOO_MANY_REQUESTS,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.TRUNCATE,
    Fault.MALFORMED,
    Fault.SLOW,
)

_AFTER_KEYS = {"403_after": Fault.FORBIDDEN, "login_after": Fault.LOGIN, "captcha_after": Fault.CAPTCHA}
_EVERY_KEYS = {
    "429_every": Fault.TOO_MANY_REQUESTS,
    "500_every": Fault.SERVER_ERROR,
    "503_every": Fault.UNAVAILABLE,
    "slow_every": Fault.SLOW,
    "truncate_every": Fault.TRUNCATE,
    "malformed_every": Fault.MALFORMED,
    "offsite_every": Fault.OFFSITE,
    "redirect_every": Fault.REDIRECT,
}


@dataclass(frozen=True)
class FaultSpec:
    """Which faults to inject; `after` maps block faults to N, `every` maps the others to K."""

    after: tuple[tuple[Fault, int], ...] = ()
    every: tuple[tuple[Fault, int], ...] = ()
    slow_seconds: float = DEFAULT_SLOW_SECONDS
    truncate_mode: str = "honest"

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        """Parse `403_after=5,429_every=3,...`; raise ValueError naming the bad item."""
        after: dict[Fault, int] = {}
        every: dict[Fault, int] = {}
        options: dict[str, str] = {}
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key, separator, value = (piece.strip() for piece in item.partition("="))
            if not separator or not value:
                raise ValueError(f"fault spec item {item!r}: expected name=value")
            if key in _AFTER_KEYS:
                after[_AFTER_KEYS[key]] = _count(item, value, minimum=0)
            elif key in _EVERY_KEYS:
                every[_EVERY_KEYS[key]] = _count(item, value, minimum=1)
            elif key in ("slow_seconds", "truncate_mode"):
                options[key] = value
            else:
                known = ", ".join([*_AFTER_KEYS, *_EVERY_KEYS, "slow_seconds", "truncate_mode"])
                raise ValueError(f"fault spec item {item!r}: unknown fault {key!r} (known: {known})")
        return cls(
            after=tuple(sorted(after.items(), key=lambda pair: BLOCK_ORDER.index(pair[0]))),
            every=tuple(sorted(every.items(), key=lambda pair: EVERY_FAULT_ORDER.index(pair[0]))),
            slow_seconds=_slow_seconds(options, every),
            truncate_mode=_truncate_mode(options, every),
        )

    def __str__(self) -> str:
        names = {fault: name for name, fault in {**_AFTER_KEYS, **_EVERY_KEYS}.items()}
        items = [f"{names[fault]}={count}" for fault, count in (*self.after, *self.every)]
        if Fault.SLOW in dict(self.every):
            items.append(f"slow_seconds={self.slow_seconds:g}")
        if Fault.TRUNCATE in dict(self.every):
            items.append(f"truncate_mode={self.truncate_mode}")
        return ",".join(items)


def _count(item: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"fault spec item {item!r}: {value!r} is not a whole number") from None
    if number < minimum:
        raise ValueError(f"fault spec item {item!r}: must be at least {minimum}")
    return number


def _slow_seconds(options: dict[str, str], every: dict[Fault, int]) -> float:
    if "slow_seconds" not in options:
        return DEFAULT_SLOW_SECONDS
    item = f"slow_seconds={options['slow_seconds']}"
    if Fault.SLOW not in every:
        raise ValueError(f"fault spec item {item!r}: needs slow_every=K")
    try:
        seconds = float(options["slow_seconds"])
    except ValueError:
        raise ValueError(f"fault spec item {item!r}: not a number of seconds") from None
    if not 0 <= seconds <= 600:
        raise ValueError(f"fault spec item {item!r}: must be between 0 and 600 seconds")
    return seconds


def _truncate_mode(options: dict[str, str], every: dict[Fault, int]) -> str:
    mode = options.get("truncate_mode", "honest")
    item = f"truncate_mode={mode}"
    if "truncate_mode" in options and Fault.TRUNCATE not in every:
        raise ValueError(f"fault spec item {item!r}: needs truncate_every=K")
    if mode not in TRUNCATE_MODES:
        raise ValueError(f"fault spec item {item!r}: must be one of {', '.join(TRUNCATE_MODES)}")
    return mode


def as_fault_spec(faults: str | FaultSpec | None) -> FaultSpec:
    if faults is None:
        return FaultSpec()
    if isinstance(faults, FaultSpec):
        return faults
    return FaultSpec.parse(faults)


class FaultInjector:
    """Thread-safe decision, per request, of which fault (if any) to serve."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._counted = 0  # faultable requests since start
        self._since_clear = 0  # faultable requests since start or the last clear_block()
        self._block: Fault | None = None
        self._just_faulted: set[str] = set()

    @property
    def counted(self) -> int:
        with self._lock:
            return self._counted

    @property
    def block(self) -> Fault | None:
        with self._lock:
            return self._block

    def clear_block(self) -> None:
        with self._lock:
            self._block = None
            self._since_clear = 0

    def decide(self, target: str) -> Fault | None:
        """Count one faultable request for `target` (path + query) and return the fault to serve."""
        with self._lock:
            self._counted += 1
            self._since_clear += 1
            if self._block is None:
                self._block = self._block_due()
            if self._block is not None:
                return self._block
            if target in self._just_faulted:
                self._just_faulted.discard(target)
                return None
            fault = self._every_fault_due()
            if fault is not None:
                self._just_faulted.add(target)
            return fault

    def _block_due(self) -> Fault | None:
        for fault, after in self.spec.after:
            if self._since_clear > after:
                return fault
        return None

    def _every_fault_due(self) -> Fault | None:
        for fault, every in self.spec.every:
            if self._counted % every == 0:
                return fault
        return None
