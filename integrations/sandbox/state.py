"""Everything the sandbox remembers, in memory, behind locks.

``SandboxState`` ties together the clock, the OAuth store, the event store,
the rate limiter, the fault set and the statistics. ``reset()`` returns all of
them to the start-up configuration.
"""

import os
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, fields, replace

from integrations.sandbox.config import RUNTIME_SETTINGS, DemoAccount, SandboxConfig
from integrations.sandbox.faults import FaultSet
from integrations.sandbox.oauth import OAuthStore
from integrations.sandbox.ratelimit import FixedWindowLimiter
from integrations.sandbox.validation import (
    PROFILE_IDENTIFIERS,
    EventInput,
    ProfileInput,
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_object_id() -> str:
    """A 26-character id shaped like Klaviyo's (a ULID: time, then random)."""
    number = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10))
    characters = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        characters.append(_CROCKFORD[digit])
    return "".join(reversed(characters))


class Clock:
    """Wall time that tests may freeze and move, to make windows exact."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frozen_at: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        frozen_at = self._frozen_at
        if frozen_at is not None:
            return frozen_at
        return time.time() + self._offset

    def freeze(self, at: float | None = None) -> float:
        with self._lock:
            self._frozen_at = self.now() if at is None else float(at)
            return self._frozen_at

    def advance(self, seconds: float) -> float:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
            return self.now()

    def unfreeze(self) -> float:
        with self._lock:
            self._frozen_at = None
            return self.now()

    def reset(self) -> None:
        with self._lock:
            self._frozen_at = None
            self._offset = 0.0

    def snapshot(self) -> dict:
        return {"now": self.now(), "frozen": self._frozen_at is not None}


class Stats:
    """Counters, overall and per account."""

    COUNTERS = (
        "requests",
        "events_accepted",
        "events_deduplicated",
        "events_rejected",
        "requests_rejected",
        "rate_limited",
        "profiles_created",
        "token_requests",
        "token_refreshes",
        "authorization_codes_issued",
        "faults_injected",
    )

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counters: dict[str | None, Counter] = defaultdict(Counter)
            self._endpoints: dict[str | None, Counter] = defaultdict(Counter)
            self._statuses: dict[str | None, Counter] = defaultdict(Counter)

    def add(self, account_id: str | None, **amounts: int) -> None:
        with self._lock:
            self._counters[account_id].update(amounts)

    def record_response(
        self, account_id: str | None, endpoint: str, status: int
    ) -> None:
        with self._lock:
            self._endpoints[account_id][endpoint] += 1
            self._statuses[account_id][str(status)] += 1

    def snapshot(self, account_id: str | None = None) -> dict:
        """All counters; with ``account_id``, only what that account did."""
        with self._lock:
            if account_id is None:
                counters = sum(self._counters.values(), Counter())
                endpoints = sum(self._endpoints.values(), Counter())
                statuses = sum(self._statuses.values(), Counter())
            else:
                counters = self._counters.get(account_id, Counter())
                endpoints = self._endpoints.get(account_id, Counter())
                statuses = self._statuses.get(account_id, Counter())
            snapshot = {name: counters[name] for name in self.COUNTERS}
            snapshot["requests_by_endpoint"] = dict(sorted(endpoints.items()))
            snapshot["responses_by_status"] = dict(sorted(statuses.items()))
            return snapshot


@dataclass(slots=True)
class Profile:
    id: str
    account_id: str
    identifiers: dict[str, str]
    attributes: dict
    created_at: float

    def as_json(self) -> dict:
        return {"id": self.id, **self.identifiers, "attributes": self.attributes}


@dataclass(slots=True)
class StoredEvent:
    id: str
    account_id: str
    endpoint: str
    metric: str
    profile: Profile
    unique_id: str | None
    time: int
    properties: dict
    value: float | int | None
    value_currency: str | None
    backfill: bool
    received_at: float

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "endpoint": self.endpoint,
            "metric": self.metric,
            "profile_id": self.profile.id,
            "profile": self.profile.as_json(),
            "unique_id": self.unique_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.time)),
            "properties": self.properties,
            "value": self.value,
            "value_currency": self.value_currency,
            "backfill": self.backfill,
            "received_at": self.received_at,
        }

    def matches(
        self,
        metric: str | None,
        profile: str | None,
        unique_id: str | None,
        account_id: str | None,
    ) -> bool:
        if metric is not None and self.metric != metric:
            return False
        if unique_id is not None and self.unique_id != unique_id:
            return False
        if account_id is not None and self.account_id != account_id:
            return False
        if profile is not None and profile != self.profile.id:
            return profile in self.profile.identifiers.values()
        return True


@dataclass(frozen=True)
class RecordOutcome:
    accepted: int
    deduplicated: int
    profiles_created: int


class EventStore:
    """Profiles and events as Klaviyo keeps them, per account."""

    def __init__(self, max_stored_events: int):
        self._lock = threading.Lock()
        self.reset(max_stored_events)

    def reset(self, max_stored_events: int) -> None:
        with self._lock:
            self._events: deque[StoredEvent] = deque(maxlen=max_stored_events)
            self._dedup_keys: set[tuple] = set()
            # (account, identifier name, value) -> profile
            self._profiles: dict[tuple[str, str, str], Profile] = {}
            self._profile_count: Counter = Counter()

    def set_capacity(self, max_stored_events: int) -> None:
        with self._lock:
            self._events = deque(self._events, maxlen=max_stored_events)

    def record(
        self,
        account_id: str,
        endpoint: str,
        events: list[EventInput],
        now: float,
    ) -> RecordOutcome:
        """Store events not seen before; find or create their profiles.

        The key is (account, profile, metric, unique_id), or the time to the
        second for an event without a unique_id; a repeat is dropped silently.
        """
        received_at = time.time()
        default_time = int(now)
        accepted = deduplicated = profiles_created = 0
        with self._lock:
            resolved: dict[int, Profile] = {}
            for event in events:
                profile = resolved.get(id(event.profile))
                if profile is None:
                    profile, created = self._resolve_profile(
                        account_id, event.profile, now
                    )
                    profiles_created += created
                    resolved[id(event.profile)] = profile
                event_time = default_time if event.time is None else event.time
                if event.unique_id is None:
                    key = (account_id, profile.id, event.metric, "t", event_time)
                else:
                    key = (account_id, profile.id, event.metric, "u", event.unique_id)
                if key in self._dedup_keys:
                    deduplicated += 1
                    continue
                self._dedup_keys.add(key)
                self._events.append(
                    StoredEvent(
                        id=new_object_id(),
                        account_id=account_id,
                        endpoint=endpoint,
                        metric=event.metric,
                        profile=profile,
                        unique_id=event.unique_id,
                        time=event_time,
                        properties=event.properties,
                        value=event.value,
                        value_currency=event.value_currency,
                        backfill=event.backfill,
                        received_at=received_at,
                    )
                )
                accepted += 1
            self._profile_count[account_id] += profiles_created
        return RecordOutcome(accepted, deduplicated, profiles_created)

    def _resolve_profile(
        self, account_id: str, profile_input: ProfileInput, now: float
    ) -> tuple[Profile, bool]:
        # Klaviyo's merge rules are richer; here the first identifier that
        # matches wins, and identifiers the profile lacks are added to it.
        keys = [
            (account_id, name, value) for name, value in _lookup_order(profile_input)
        ]
        profile = next(
            (self._profiles[key] for key in keys if key in self._profiles), None
        )
        created = profile is None
        if created:
            profile = Profile(
                id=new_object_id(),
                account_id=account_id,
                identifiers={},
                attributes={},
                created_at=now,
            )
            self._profiles[(account_id, "id", profile.id)] = profile
        for key in keys:
            name = key[1]
            if (
                name != "id"
                and name not in profile.identifiers
                and key not in self._profiles
            ):
                profile.identifiers[name] = key[2]
                self._profiles[key] = profile
        for name, value in profile_input.attributes.items():
            if value is not None and name not in PROFILE_IDENTIFIERS:
                profile.attributes[name] = value
        return profile, created

    def find(
        self,
        *,
        metric: str | None = None,
        profile: str | None = None,
        unique_id: str | None = None,
        account_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[dict]]:
        """Stored events in arrival order, filtered; the total before paging."""
        with self._lock:
            found = [
                event
                for event in self._events
                if event.matches(metric, profile, unique_id, account_id)
            ]
        page = found[offset:] if limit is None else found[offset : offset + limit]
        return len(found), [event.as_json() for event in page]

    def recent(self, count: int) -> list[dict]:
        with self._lock:
            newest = list(self._events)[-count:]
        return [event.as_json() for event in reversed(newest)]

    def counts(self, account_id: str | None = None) -> dict[str, int]:
        with self._lock:
            if account_id is None:
                stored = len(self._events)
                profiles = sum(self._profile_count.values())
            else:
                stored = sum(1 for e in self._events if e.account_id == account_id)
                profiles = self._profile_count[account_id]
        return {"events_stored": stored, "profiles": profiles}


def _lookup_order(profile_input: ProfileInput) -> list[tuple[str, str]]:
    order = []
    if profile_input.id:
        order.append(("id", profile_input.id))
    identifiers = profile_input.identifiers
    order.extend(
        (name, identifiers[name]) for name in PROFILE_IDENTIFIERS if name in identifiers
    )
    return order


@dataclass
class RuntimeSettings:
    """The part of the configuration ``POST /sandbox/config`` may change."""

    redirect_uris: tuple[str, ...]
    access_token_ttl: int
    authorization_code_ttl: int
    refresh_token_idle_ttl: int
    rate_limits_enabled: bool
    rate_limit_scale: float
    max_stored_events: int

    @classmethod
    def from_config(cls, config: SandboxConfig) -> "RuntimeSettings":
        return cls(**{name: getattr(config, name) for name in RUNTIME_SETTINGS})

    def as_json(self) -> dict:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        values["redirect_uris"] = list(self.redirect_uris)
        return values


class SettingsError(ValueError):
    """A configuration change the sandbox refuses; the message says why."""


def _parse_settings(changes: object) -> dict:
    if not isinstance(changes, dict):
        raise SettingsError("The configuration must be a JSON object.")
    unknown = sorted(set(changes) - set(RUNTIME_SETTINGS))
    if unknown:
        raise SettingsError(f"Unknown settings: {', '.join(unknown)}.")
    parsed = {}
    for name, value in changes.items():
        if name == "redirect_uris":
            if not isinstance(value, list) or not all(
                isinstance(uri, str) and uri for uri in value
            ):
                raise SettingsError("redirect_uris must be a list of URIs.")
            parsed[name] = tuple(value)
        elif name == "rate_limits_enabled":
            if not isinstance(value, bool):
                raise SettingsError("rate_limits_enabled must be true or false.")
            parsed[name] = value
        elif name == "rate_limit_scale":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError("rate_limit_scale must be a number.")
            if value <= 0:
                raise SettingsError("rate_limit_scale must be above 0.")
            parsed[name] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a whole number, 1 or more.")
            parsed[name] = value
    return parsed


class SandboxState:
    """The sandbox's memory: reset to the start-up configuration on demand."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.accounts: dict[str, DemoAccount] = {
            account.id: account for account in config.accounts
        }
        unknown = sorted(set(config.api_keys.values()) - set(self.accounts))
        if unknown:
            raise SettingsError(
                f"API keys name unknown accounts: {', '.join(unknown)}."
            )
        self.clock = Clock()
        self.oauth = OAuthStore()
        self.events = EventStore(config.max_stored_events)
        self.stats = Stats()
        self.limiter = FixedWindowLimiter()
        self.faults = FaultSet()
        self._lock = threading.Lock()
        self._hang_release = threading.Event()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.settings = RuntimeSettings.from_config(self.config)
            self.api_keys: dict[str, str] = dict(self.config.api_keys)
        self.clock.reset()
        self.oauth.reset()
        self.events.reset(self.config.max_stored_events)
        self.stats.reset()
        self.limiter.reset()
        self.faults.clear()
        self.release_hung_requests()

    def configure(self, changes: object) -> RuntimeSettings:
        """Apply a ``POST /sandbox/config`` change; raises SettingsError."""
        parsed = _parse_settings(changes)
        with self._lock:
            self.settings = replace(self.settings, **parsed)
        if "max_stored_events" in parsed:
            self.events.set_capacity(parsed["max_stored_events"])
        return self.settings

    def register_api_key(self, account_id: str) -> str:
        key = "pk_" + secrets.token_hex(17)
        with self._lock:
            self.api_keys[key] = account_id
        return key

    def account_for_api_key(self, key: str) -> str | None:
        return self.api_keys.get(key)

    def hold(self, seconds: float) -> None:
        """Block the calling request thread; reset and stop cut it short."""
        self._hang_release.wait(seconds)

    def release_hung_requests(self) -> None:
        with self._lock:
            release, self._hang_release = self._hang_release, threading.Event()
        release.set()
