"""Request bodies checked the way Klaviyo checks them; pure code, no I/O.

Two sources of rules meet here. The schema of the official spec (types,
required members, ``type`` values, ``date-time``) is followed to the letter,
including its OpenAPI 3.0 quirk that a ``$ref`` ignores a sibling
``nullable``, so ``location: null`` fails exactly as it fails the schema.
Klaviyo's documented limits that the schema cannot express are enforced on
top: E.164 phone numbers, the metric name length, one profile identifier,
property count, nesting, array and string sizes, the time range, the bulk
event count and a ``unique_id`` repeated inside one bulk request.

Where two documents disagree, the stricter reading wins, so a body the
sandbox accepts is one Klaviyo accepts under either reading:

- metric name: the spec's text and KLAVIYO.md both say *less than* 128
  characters, so 127 is the longest accepted name;
- properties: the docs say 300, the spec's text 400: 300;
- time: the docs say from the year 2000, the spec's text after 1990: 2000;
- sizes: "100 kB" and "5 MB" are read as decimal, 100,000 and 5,000,000 bytes
  of UTF-8.

Every function returns problems as ``Problem(pointer, detail)``, one per bad
item, with the JSON pointer of that item (``""`` is the whole body).
"""

import calendar
import json
import re
from dataclasses import dataclass, field

MAX_BODY_BYTES = 5_000_000
MAX_STRING_BYTES = 100_000
MAX_EVENT_PROPERTIES = 300
MAX_NESTING_LEVELS = 10
MAX_ARRAY_ITEMS = 4_000
MAX_METRIC_NAME_LENGTH = 127
MAX_EVENTS_PER_BULK_REQUEST = 1_000
EARLIEST_EVENT_TIME = calendar.timegm((2000, 1, 1, 0, 0, 0))
MAX_EVENT_TIME_AHEAD = 365 * 24 * 3600

# A UTF-8 character takes at most 4 bytes, so a string this short or
# shorter cannot exceed MAX_STRING_BYTES and need not be encoded.
_SHORT_STRING_LENGTH = MAX_STRING_BYTES // 4

# RFC 3339 date-time, as the spec's ``format: date-time`` checks it (the
# validator upper-cases the text first, hence the lower-case T and Z).
_DATE_TIME = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(\d{2})[Tt]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"
    r"(?:\.\d+)?(?:[Zz]|([+-])([01]\d|2[0-3]):([0-5]\d))",
    re.ASCII,
)
# E.164: a plus sign, then 8 to 15 digits, the first of them not 0.
_E164 = re.compile(r"\+[1-9]\d{7,14}", re.ASCII)

PROFILE_IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
_PROFILE_STRING_ATTRIBUTES = (
    "email",
    "phone_number",
    "external_id",
    "anonymous_id",
    "_kx",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
)
_LOCATION_STRING_ATTRIBUTES = (
    "address1",
    "address2",
    "city",
    "country",
    "region",
    "zip",
    "timezone",
    "ip",
)

_EVENTS_POINTER = "/data/attributes/events-bulk-create/data"


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad item of a request body."""

    pointer: str
    detail: str


@dataclass(slots=True)
class ProfileInput:
    """The profile an event names: its identifiers and other attributes."""

    id: str | None
    identifiers: dict[str, str]
    attributes: dict


@dataclass(slots=True)
class EventInput:
    """One event of an accepted body, in the shape the store records."""

    profile: ProfileInput
    metric: str
    properties: dict
    # Epoch seconds, truncated to the second; None means "when received".
    time: int | None
    value: float | int | None
    value_currency: str | None
    unique_id: str | None
    backfill: bool


@dataclass(slots=True)
class BodyCheck:
    """The outcome of checking one body: problems, or the events to record."""

    problems: list[Problem] = field(default_factory=list)
    events: list[EventInput] = field(default_factory=list)
    # Events the body carries, counted even when it is rejected.
    event_count: int = 0

    @property
    def is_valid(self) -> bool:
        return not self.problems


class InvalidBody(ValueError):
    """The body cannot be read as JSON at all."""

    def __init__(self, problem: Problem):
        super().__init__(problem.detail)
        self.problem = problem


def body_size_problem(size: int) -> Problem | None:
    """A problem when the raw body is larger than Klaviyo accepts."""
    if size > MAX_BODY_BYTES:
        return Problem(
            "",
            f"The request body is {size:,} bytes; at most {MAX_BODY_BYTES:,} "
            "are accepted.",
        )
    return None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def parse_json_body(raw: bytes) -> object:
    """The JSON document in ``raw``; raises InvalidBody when there is none."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as error:
        raise InvalidBody(
            Problem("", f"The request body is not valid JSON: {error}.")
        ) from error
    except RecursionError as error:
        raise InvalidBody(
            Problem("", "The request body nests too deeply to be read.")
        ) from error


def escape_pointer_token(token: str) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Checker:
    """Collects problems while walking one body."""

    __slots__ = ("latest_time", "problems")

    def __init__(self, now: float):
        self.problems: list[Problem] = []
        self.latest_time = int(now) + MAX_EVENT_TIME_AHEAD

    def add(self, pointer: str, detail: str) -> None:
        self.problems.append(Problem(pointer, detail))

    # -- members -----------------------------------------------------------

    def required_object(self, parent: dict, key: str, pointer: str) -> dict | None:
        """``parent[key]`` when it is an object, else a problem and None."""
        value = parent.get(key)
        if type(value) is dict:
            return value
        if key not in parent:
            self.add(f"{pointer}/{key}", f"'{key}' is a required field.")
        else:
            self.add(
                f"{pointer}/{key}",
                f"'{key}' must be an object, not {_type_name(value)}.",
            )
        return None

    def required_list(self, parent: dict, key: str, pointer: str) -> list | None:
        value = parent.get(key)
        if type(value) is list:
            return value
        if key not in parent:
            self.add(f"{pointer}/{key}", f"'{key}' is a required field.")
        else:
            self.add(
                f"{pointer}/{key}",
                f"'{key}' must be an array, not {_type_name(value)}.",
            )
        return None

    def resource_type(self, parent: dict, expected: str, pointer: str) -> None:
        value = parent.get("type")
        if value == expected and type(value) is str:
            return
        if "type" not in parent:
            self.add(f"{pointer}/type", "'type' is a required field.")
        else:
            self.add(f"{pointer}/type", f"'type' must be '{expected}'.")

    def optional_string(self, parent: dict, key: str, pointer: str) -> str | None:
        value = parent.get(key)
        if value is None or type(value) is str:
            if value is not None and len(value) > _SHORT_STRING_LENGTH:
                self.string_size(value, f"{pointer}/{key}")
            return value
        self.add(
            f"{pointer}/{key}",
            f"'{key}' must be a string or null, not {_type_name(value)}.",
        )
        return None

    def string_size(self, value: str, pointer: str) -> None:
        size = len(value.encode("utf-8"))
        if size > MAX_STRING_BYTES:
            self.add(
                pointer,
                f"The string is {size:,} bytes; at most {MAX_STRING_BYTES:,} are "
                "accepted.",
            )

    # -- free-form values --------------------------------------------------

    def tree(self, value: dict | list, pointer: str, level: int) -> None:
        """Check strings, arrays and nesting inside a free-form object."""
        if level > MAX_NESTING_LEVELS:
            self.add(
                pointer,
                f"Values nest {level} levels deep; at most {MAX_NESTING_LEVELS} "
                "are accepted.",
            )
            return
        if type(value) is dict:
            items = value.items()
        else:
            if len(value) > MAX_ARRAY_ITEMS:
                self.add(
                    pointer,
                    f"The array has {len(value):,} items; at most "
                    f"{MAX_ARRAY_ITEMS:,} are accepted.",
                )
            items = enumerate(value)
        for key, item in items:
            item_type = type(item)
            if item_type is str:
                if len(item) > _SHORT_STRING_LENGTH:
                    self.string_size(
                        item, f"{pointer}/{escape_pointer_token(str(key))}"
                    )
            elif item_type is dict or item_type is list:
                self.tree(
                    item, f"{pointer}/{escape_pointer_token(str(key))}", level + 1
                )

    # -- event members -----------------------------------------------------

    def event_time(self, attributes: dict, pointer: str) -> int | None:
        value = attributes.get("time")
        if value is None:
            return None
        if type(value) is not str:
            self.add(
                f"{pointer}/time",
                f"'time' must be a date-time string or null, not {_type_name(value)}.",
            )
            return None
        match = _DATE_TIME.fullmatch(value)
        if match is None:
            self.add(f"{pointer}/time", "'time' must be an RFC 3339 date-time.")
            return None
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        if year == 0 or day < 1 or day > calendar.monthrange(year, month)[1]:
            self.add(f"{pointer}/time", "'time' must be an RFC 3339 date-time.")
            return None
        epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        sign, offset_hours, offset_minutes = match.groups()[6:]
        if sign:
            offset = int(offset_hours) * 3600 + int(offset_minutes) * 60
            epoch = epoch - offset if sign == "+" else epoch + offset
        if epoch < EARLIEST_EVENT_TIME or epoch > self.latest_time:
            self.add(
                f"{pointer}/time",
                "'time' must be between 2000-01-01 and one year from now.",
            )
            return None
        return epoch

    def event_value(self, attributes: dict, pointer: str) -> float | int | None:
        value = attributes.get("value")
        value_type = type(value)
        if value is None or value_type is int or value_type is float:
            return value
        self.add(
            f"{pointer}/value",
            f"'value' must be a number or null, not {_type_name(value)}.",
        )
        return None

    def optional_boolean(self, parent: dict, key: str, pointer: str) -> bool:
        value = parent.get(key)
        if value is None or type(value) is bool:
            return bool(value)
        self.add(
            f"{pointer}/{key}",
            f"'{key}' must be a boolean or null, not {_type_name(value)}.",
        )
        return False

    def metric_name(self, attributes: dict, pointer: str) -> str | None:
        metric = self.required_object(attributes, "metric", pointer)
        if metric is None:
            return None
        pointer = f"{pointer}/metric"
        data = self.required_object(metric, "data", pointer)
        if data is None:
            return None
        pointer = f"{pointer}/data"
        self.resource_type(data, "metric", pointer)
        metric_attributes = self.required_object(data, "attributes", pointer)
        if metric_attributes is None:
            return None
        pointer = f"{pointer}/attributes"
        self.optional_string(metric_attributes, "service", pointer)
        name = metric_attributes.get("name")
        if type(name) is not str:
            if "name" not in metric_attributes:
                self.add(f"{pointer}/name", "'name' is a required field.")
            else:
                self.add(
                    f"{pointer}/name",
                    f"'name' must be a string, not {_type_name(name)}.",
                )
            return None
        if not name:
            self.add(f"{pointer}/name", "'name' must not be empty.")
            return None
        if len(name) > MAX_METRIC_NAME_LENGTH:
            self.add(
                f"{pointer}/name",
                f"'name' is {len(name)} characters; it must be shorter than "
                f"{MAX_METRIC_NAME_LENGTH + 1}.",
            )
            return None
        return name

    def event_attributes(
        self, attributes: dict, pointer: str
    ) -> tuple[str | None, dict | None, int | None, object, str | None, bool]:
        properties = attributes.get("properties")
        if type(properties) is dict:
            if len(properties) > MAX_EVENT_PROPERTIES:
                self.add(
                    f"{pointer}/properties",
                    f"The event has {len(properties)} properties; at most "
                    f"{MAX_EVENT_PROPERTIES} are accepted.",
                )
            self.tree(properties, f"{pointer}/properties", 1)
        else:
            self.required_object(attributes, "properties", pointer)
            properties = None
        name = self.metric_name(attributes, pointer)
        time = self.event_time(attributes, pointer)
        value = self.event_value(attributes, pointer)
        self.optional_string(attributes, "value_currency", pointer)
        unique_id = self.optional_string(attributes, "unique_id", pointer)
        backfill = self.optional_boolean(attributes, "backfill", pointer)
        return name, properties, time, value, unique_id, backfill

    # -- profiles ----------------------------------------------------------

    def profile(
        self, data: dict, pointer: str, meta_in_attributes: bool
    ) -> ProfileInput | None:
        """The profile in a ``profile.data`` resource object.

        None when it has no attributes object; problems are collected either
        way, so a returned profile is not necessarily a valid one.
        """
        self.resource_type(data, "profile", pointer)
        profile_id = self.optional_string(data, "id", pointer)
        if not meta_in_attributes and "meta" in data:
            self.profile_meta(data["meta"], f"{pointer}/meta")
        attributes = self.required_object(data, "attributes", pointer)
        if attributes is None:
            return None
        attributes_pointer = f"{pointer}/attributes"
        identifiers = {}
        # Identifiers given at all, valid or not: a bad one is its own error.
        named = bool(profile_id)
        for key in _PROFILE_STRING_ATTRIBUTES:
            if key in attributes:
                value = self.optional_string(attributes, key, attributes_pointer)
                if key in PROFILE_IDENTIFIERS and attributes[key] is not None:
                    named = True
                    if value:
                        identifiers[key] = value
                    elif value == "" and key != "phone_number":
                        self.add(
                            f"{attributes_pointer}/{key}",
                            f"'{key}' must not be empty.",
                        )
        phone_number = attributes.get("phone_number")
        if type(phone_number) is str and _E164.fullmatch(phone_number) is None:
            self.add(
                f"{attributes_pointer}/phone_number",
                "'phone_number' must be in E.164 format, such as +14155550100.",
            )
        if "location" in attributes:
            self.location(attributes["location"], f"{attributes_pointer}/location")
        if "properties" in attributes:
            properties = attributes["properties"]
            if type(properties) is dict:
                self.tree(properties, f"{attributes_pointer}/properties", 1)
            elif properties is not None:
                self.add(
                    f"{attributes_pointer}/properties",
                    "'properties' must be an object or null, not "
                    f"{_type_name(properties)}.",
                )
        if meta_in_attributes and "meta" in attributes:
            self.profile_meta(attributes["meta"], f"{attributes_pointer}/meta")
        if not named:
            self.add(
                attributes_pointer,
                "The profile needs at least one identifier: id, email, "
                "phone_number, external_id, anonymous_id or _kx.",
            )
        if "email" in identifiers:
            identifiers["email"] = identifiers["email"].lower()
        return ProfileInput(
            id=profile_id, identifiers=identifiers, attributes=attributes
        )

    def location(self, location: object, pointer: str) -> None:
        # The spec writes ``$ref`` beside ``nullable``; OpenAPI 3.0 ignores the
        # sibling, so the schema refuses null here and so does the sandbox.
        if type(location) is not dict:
            self.add(
                pointer, f"'location' must be an object, not {_type_name(location)}."
            )
            return
        for key in _LOCATION_STRING_ATTRIBUTES:
            if key in location:
                self.optional_string(location, key, pointer)
        for key in ("latitude", "longitude"):
            # ``oneOf`` string or number: null matches neither.
            if key in location and type(location[key]) not in (str, int, float):
                self.add(
                    f"{pointer}/{key}",
                    f"'{key}' must be a string or a number, not "
                    f"{_type_name(location[key])}.",
                )

    def profile_meta(self, meta: object, pointer: str) -> None:
        if type(meta) is not dict:
            self.add(pointer, f"'meta' must be an object, not {_type_name(meta)}.")
            return
        if "patch_properties" in meta:
            patch = meta["patch_properties"]
            patch_pointer = f"{pointer}/patch_properties"
            if type(patch) is not dict:
                self.add(
                    patch_pointer,
                    f"'patch_properties' must be an object, not {_type_name(patch)}.",
                )
            else:
                for key in ("append", "unappend"):
                    value = patch.get(key)
                    if value is not None and type(value) is not dict:
                        self.add(
                            f"{patch_pointer}/{key}",
                            f"'{key}' must be an object or null, not "
                            f"{_type_name(value)}.",
                        )
                if "unset" in patch:
                    unset = patch["unset"]
                    if type(unset) is not str and not (
                        type(unset) is list and all(type(item) is str for item in unset)
                    ):
                        self.add(
                            f"{patch_pointer}/unset",
                            "'unset' must be a string or an array of strings.",
                        )
        if "patch_identifiers" in meta:
            patch = meta["patch_identifiers"]
            patch_pointer = f"{pointer}/patch_identifiers"
            if type(patch) is not dict:
                self.add(
                    patch_pointer,
                    f"'patch_identifiers' must be an object, not {_type_name(patch)}.",
                )
            else:
                for key in ("append", "unappend"):
                    if key in patch and type(patch[key]) is not dict:
                        self.add(
                            f"{patch_pointer}/{key}",
                            f"'{key}' must be an object, not {_type_name(patch[key])}.",
                        )


def check_create_event(body: object, now: float) -> BodyCheck:
    """Check a ``POST /api/events`` body; ``now`` bounds the event time."""
    checker = _Checker(now)
    result = BodyCheck(problems=checker.problems, event_count=1)
    if type(body) is not dict:
        checker.add("", f"The body must be an object, not {_type_name(body)}.")
        return result
    data = checker.required_object(body, "data", "")
    if data is None:
        return result
    checker.resource_type(data, "event", "/data")
    attributes = checker.required_object(data, "attributes", "/data")
    if attributes is None:
        return result
    pointer = "/data/attributes"
    name, properties, time, value, unique_id, backfill = checker.event_attributes(
        attributes, pointer
    )
    profile = None
    profile_container = checker.required_object(attributes, "profile", pointer)
    if profile_container is not None:
        profile_data = checker.required_object(
            profile_container, "data", f"{pointer}/profile"
        )
        if profile_data is not None:
            profile = checker.profile(
                profile_data, f"{pointer}/profile/data", meta_in_attributes=True
            )
    if checker.problems:
        return result
    result.events.append(
        EventInput(
            profile=profile,
            metric=name,
            properties=properties,
            time=time,
            value=value,
            value_currency=attributes.get("value_currency"),
            unique_id=unique_id,
            backfill=backfill,
        )
    )
    return result


def check_bulk_create_events(body: object, now: float) -> BodyCheck:
    """Check a ``POST /api/event-bulk-create-jobs`` body."""
    checker = _Checker(now)
    result = BodyCheck(problems=checker.problems)
    if type(body) is not dict:
        checker.add("", f"The body must be an object, not {_type_name(body)}.")
        return result
    data = checker.required_object(body, "data", "")
    if data is None:
        return result
    checker.resource_type(data, "event-bulk-create-job", "/data")
    attributes = checker.required_object(data, "attributes", "/data")
    if attributes is None:
        return result
    bulk = checker.required_object(attributes, "events-bulk-create", "/data/attributes")
    if bulk is None:
        return result
    groups = checker.required_list(bulk, "data", "/data/attributes/events-bulk-create")
    if groups is None:
        return result
    # (profile, metric, unique_id) -> pointer of its first event.
    seen_unique_ids: dict[tuple, str] = {}
    # identifier -> index of the first group that named it, so that two groups
    # for the same person count as one profile.
    profile_groups: dict[tuple[str, str], int] = {}
    events = result.events
    for group_index, group in enumerate(groups):
        group_pointer = f"{_EVENTS_POINTER}/{group_index}"
        if type(group) is not dict:
            checker.add(
                group_pointer,
                f"Each item must be an object, not {_type_name(group)}.",
            )
            continue
        checker.resource_type(group, "event-bulk-create", group_pointer)
        group_attributes = checker.required_object(group, "attributes", group_pointer)
        if group_attributes is None:
            continue
        attributes_pointer = f"{group_pointer}/attributes"
        group_backfill = checker.optional_boolean(
            group_attributes, "backfill", attributes_pointer
        )
        profile = None
        profile_container = checker.required_object(
            group_attributes, "profile", attributes_pointer
        )
        if profile_container is not None:
            profile_data = checker.required_object(
                profile_container, "data", f"{attributes_pointer}/profile"
            )
            if profile_data is not None:
                profile = checker.profile(
                    profile_data,
                    f"{attributes_pointer}/profile/data",
                    meta_in_attributes=False,
                )
        events_container = checker.required_object(
            group_attributes, "events", attributes_pointer
        )
        if events_container is None:
            continue
        group_events = checker.required_list(
            events_container, "data", f"{attributes_pointer}/events"
        )
        if group_events is None:
            continue
        result.event_count += len(group_events)
        profile_key = group_index
        if profile is not None:
            tokens = list(profile.identifiers.items())
            if profile.id:
                tokens.append(("id", profile.id))
            known = [
                profile_groups[token] for token in tokens if token in profile_groups
            ]
            profile_key = min(known) if known else group_index
            for token in tokens:
                profile_groups.setdefault(token, profile_key)
        events_pointer = f"{attributes_pointer}/events/data"
        for event_index, event in enumerate(group_events):
            event_pointer = f"{events_pointer}/{event_index}"
            if type(event) is not dict:
                checker.add(
                    event_pointer,
                    f"Each event must be an object, not {_type_name(event)}.",
                )
                continue
            checker.resource_type(event, "event", event_pointer)
            event_attributes = checker.required_object(
                event, "attributes", event_pointer
            )
            if event_attributes is None:
                continue
            pointer = f"{event_pointer}/attributes"
            name, properties, time, value, unique_id, backfill = (
                checker.event_attributes(event_attributes, pointer)
            )
            if unique_id is not None and name is not None:
                key = (profile_key, name, unique_id)
                if key in seen_unique_ids:
                    checker.add(
                        f"{pointer}/unique_id",
                        f"'unique_id' {unique_id!r} repeats the one at "
                        f"{seen_unique_ids[key]} for the same profile and metric.",
                    )
                else:
                    seen_unique_ids[key] = f"{pointer}/unique_id"
            if profile is None or checker.problems:
                continue
            events.append(
                EventInput(
                    profile=profile,
                    metric=name,
                    properties=properties,
                    time=time,
                    value=value,
                    value_currency=event_attributes.get("value_currency"),
                    unique_id=unique_id,
                    backfill=backfill or group_backfill,
                )
            )
    if result.event_count > MAX_EVENTS_PER_BULK_REQUEST:
        checker.add(
            _EVENTS_POINTER,
            f"The request carries {result.event_count:,} events; at most "
            f"{MAX_EVENTS_PER_BULK_REQUEST:,} are accepted.",
        )
    if checker.problems:
        events.clear()
    return result
