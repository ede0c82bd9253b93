"""Failures on demand, for tests and chaos runs.

``POST /sandbox/faults`` merges its keys into the current fault set; reset
clears it. Faults other than ``hang_after_accept`` answer before any
processing: nothing is recorded and no rate-limit quota is spent.
"""

import random
import threading
from collections import deque
from dataclasses import dataclass

ERROR_RATE_STATUSES = (500, 502, 503, 504)
NEXT_RESPONSE_STATUSES = (400, 401, 403, 404, 409, 410, 429, 500, 502, 503, 504, 524)
DEFAULT_RETRY_AFTER = 1


class FaultSpecError(ValueError):
    """A fault request the sandbox cannot honour; the message says why."""


@dataclass(frozen=True)
class InjectedResponse:
    """A status answered instead of processing the request."""

    status: int
    # Only for 429.
    retry_after: int | None = None
    # An HTML page as an edge proxy sends, instead of a JSON:API error.
    html: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Hang:
    """Hold the answer of a processed request for this many seconds."""

    seconds: float


class FaultSet:
    """The faults in force; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.error_rates: dict[int, float] = {}
        self.seed: int | None = None
        self._random = random.Random()
        self.next_responses: deque[InjectedResponse] = deque()
        self.latency_ms = 0
        self.hang_count = 0
        self.hang_seconds = 0.0
        self.outage_until: float | None = None
        self.html_403_count = 0

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def update(self, spec: dict, now: float) -> None:
        """Merge ``spec`` (the JSON of ``POST /sandbox/faults``) into the set."""
        parsed = _parse(spec)
        with self._lock:
            if "error_rates" in parsed:
                self.error_rates = parsed["error_rates"]
            if "seed" in parsed:
                self.seed = parsed["seed"]
                self._random = random.Random(parsed["seed"])
            if "next_responses" in parsed:
                self.next_responses.extend(parsed["next_responses"])
            if "latency_ms" in parsed:
                self.latency_ms = parsed["latency_ms"]
            if "hang_after_accept" in parsed:
                self.hang_count, self.hang_seconds = parsed["hang_after_accept"]
            if "outage_seconds" in parsed:
                seconds = parsed["outage_seconds"]
                self.outage_until = now + seconds if seconds > 0 else None
            if "html_403" in parsed:
                self.html_403_count = parsed["html_403"]

    def snapshot(self, now: float) -> dict:
        with self._lock:
            outage_left = (
                max(0.0, self.outage_until - now) if self.outage_until else 0.0
            )
            return {
                "error_rates": {str(k): v for k, v in self.error_rates.items()},
                "seed": self.seed,
                "next_responses": [response.status for response in self.next_responses],
                "latency_ms": self.latency_ms,
                "hang_after_accept": {
                    "count": self.hang_count,
                    "seconds": self.hang_seconds,
                },
                "outage_seconds_left": outage_left,
                "html_403": self.html_403_count,
            }

    def latency_seconds(self) -> float:
        return self.latency_ms / 1000

    def in_outage(self, now: float) -> bool:
        with self._lock:
            return self.outage_until is not None and now < self.outage_until

    def take_api_response(self) -> InjectedResponse | None:
        """The injected answer for the next API request, if any.

        Queued statuses come first, then an edge 403, then a random error
        drawn from ``error_rates``.
        """
        with self._lock:
            if self.next_responses:
                return self.next_responses.popleft()
            if self.html_403_count > 0:
                self.html_403_count -= 1
                return InjectedResponse(403, html=True, reason="html_403")
            if self.error_rates:
                draw = self._random.random()
                cumulative = 0.0
                for status, rate in self.error_rates.items():
                    cumulative += rate
                    if draw < cumulative:
                        return InjectedResponse(status, reason="error_rate")
            return None

    def take_hang(self) -> Hang | None:
        """A hold for this processed API request, while any are left."""
        with self._lock:
            if self.hang_count <= 0:
                return None
            self.hang_count -= 1
            return Hang(self.hang_seconds)


def _number(value: object, name: str, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(f"{name} must be a number.")
    if value < minimum:
        raise FaultSpecError(f"{name} must be at least {minimum}.")
    return value


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSpecError(f"{name} must be a whole number, 0 or more.")
    return value


def _next_response(item: object) -> InjectedResponse:
    if isinstance(item, dict):
        status = item.get("status")
        retry_after = item.get("retry_after")
    else:
        status, retry_after = item, None
    if status not in NEXT_RESPONSE_STATUSES or isinstance(status, bool):
        raise FaultSpecError(
            "next_responses items must be one of "
            f"{', '.join(map(str, NEXT_RESPONSE_STATUSES))}."
        )
    if status == 429:
        retry_after = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        retry_after = max(1, _count(retry_after, "retry_after"))
    return InjectedResponse(status, retry_after=retry_after, reason="next_responses")


def _parse(spec: object) -> dict:
    if not isinstance(spec, dict):
        raise FaultSpecError("The faults must be a JSON object.")
    known = {
        "error_rates",
        "seed",
        "next_responses",
        "latency_ms",
        "hang_after_accept",
        "outage_seconds",
        "html_403",
    }
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultSpecError(f"Unknown faults: {', '.join(unknown)}.")
    parsed: dict = {}
    if "error_rates" in spec:
        rates = spec["error_rates"]
        if not isinstance(rates, dict):
            raise FaultSpecError("error_rates must map a status to a probability.")
        parsed_rates = {}
        for status, rate in rates.items():
            if not str(status).isdigit() or int(status) not in ERROR_RATE_STATUSES:
                raise FaultSpecError(
                    "error_rates statuses must be among "
                    f"{', '.join(map(str, ERROR_RATE_STATUSES))}."
                )
            parsed_rates[int(status)] = _number(rate, f"error_rates[{status}]")
        if sum(parsed_rates.values()) > 1:
            raise FaultSpecError("error_rates must add up to 1 at most.")
        parsed["error_rates"] = {k: v for k, v in parsed_rates.items() if v > 0}
    if "seed" in spec:
        seed = spec["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultSpecError("seed must be a whole number or null.")
        parsed["seed"] = seed
    if "next_responses" in spec:
        items = spec["next_responses"]
        if not isinstance(items, list):
            raise FaultSpecError("next_responses must be a list of statuses.")
        parsed["next_responses"] = [_next_response(item) for item in items]
    if "latency_ms" in spec:
        parsed["latency_ms"] = _number(spec["latency_ms"], "latency_ms")
    if "hang_after_accept" in spec:
        hang = spec["hang_after_accept"]
        if not isinstance(hang, dict):
            raise FaultSpecError("hang_after_accept must be {count, seconds}.")
        parsed["hang_after_accept"] = (
            _count(hang.get("count", 1), "hang_after_accept.count"),
            _number(hang.get("seconds"), "hang_after_accept.seconds"),
        )
    if "outage_seconds" in spec:
        parsed["outage_seconds"] = _number(spec["outage_seconds"], "outage_seconds")
    if "html_403" in spec:
        parsed["html_403"] = _count(spec["html_403"], "html_403")
    return parsed
