"""Klaviyo's fixed-window rate limits: a 1 s burst and a 60 s steady window.

Windows are aligned on the epoch, per (account, app, endpoint). A refused
request consumes nothing, so a client that waits ``Retry-After`` gets in.
"""

import math
import threading
from dataclasses import dataclass

BURST_WINDOW_SECONDS = 1
STEADY_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class EndpointLimits:
    """Requests allowed per burst window and per steady window."""

    burst: int
    steady: int


# From the spec's x-klaviyo-ratelimit of each operation.
ENDPOINT_LIMITS = {
    "create_event": EndpointLimits(burst=350, steady=3_500),
    "bulk_create_events": EndpointLimits(burst=10, steady=150),
    "get_accounts": EndpointLimits(burst=1, steady=15),
}


def scaled_limit(limit: int, scale: float) -> int:
    """``limit`` times ``scale``, rounded down, never below one request."""
    # Rounding first keeps 0.1 * 150 at 15 despite binary floating point.
    return max(1, math.floor(round(limit * scale, 6)))


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, and what the headers should say."""

    allowed: bool
    # Whole seconds until every exceeded window resets; 0 when allowed.
    retry_after: int
    # The steady window, which Klaviyo's RateLimit-* headers describe.
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        if not self.allowed:
            return {"Retry-After": str(self.retry_after)}
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class FixedWindowLimiter:
    """Counts requests per key in the current burst and steady windows."""

    def __init__(self):
        self._lock = threading.Lock()
        # key -> [burst window index, burst count, steady index, steady count]
        self._windows: dict[tuple, list[int]] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def acquire(self, key: tuple, limits: EndpointLimits, now: float) -> Decision:
        """Count one request against ``key`` unless a window is full."""
        burst_index = math.floor(now / BURST_WINDOW_SECONDS)
        steady_index = math.floor(now / STEADY_WINDOW_SECONDS)
        steady_reset = (steady_index + 1) * STEADY_WINDOW_SECONDS - now
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = [burst_index, 0, steady_index, 0]
            if window[0] != burst_index:
                window[0], window[1] = burst_index, 0
            if window[2] != steady_index:
                window[2], window[3] = steady_index, 0
            waits = []
            if window[1] >= limits.burst:
                waits.append((burst_index + 1) * BURST_WINDOW_SECONDS - now)
            if window[3] >= limits.steady:
                waits.append(steady_reset)
            if waits:
                return Decision(
                    allowed=False,
                    retry_after=max(1, math.ceil(max(waits))),
                    limit=limits.steady,
                    remaining=0,
                    reset=max(1, math.ceil(steady_reset)),
                )
            window[1] += 1
            window[3] += 1
            return Decision(
                allowed=True,
                retry_after=0,
                limit=limits.steady,
                remaining=limits.steady - window[3],
                reset=max(1, math.ceil(steady_reset)),
            )
