"""Klaviyo's official OpenAPI spec as a test oracle.

Loads ``stable.json`` from the spec folder and checks a request body against
the request schema of one operation, with OpenAPI 3.0 rules (``nullable``,
``format: date-time``) and ``$ref`` resolved inside the spec file.

A test that needs the spec carries ``@requires_klaviyo_spec``; it is skipped
with ``SKIP_REASON`` when the folder is missing, and runs everywhere else.
"""

import json
import os
from functools import cache
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

REPOSITORY_DIR = Path(__file__).resolve().parent.parent
SPEC_DIR_CANDIDATES = (
    (REPOSITORY_DIR.parent / "shared" / "klaviyo-openapi").resolve(),
    Path("/work/shared/klaviyo-openapi"),
)
SPEC_FILE_NAME = "stable.json"
SPEC_URI = "urn:klaviyo-openapi:stable"
JSON_API_MEDIA_TYPE = "application/vnd.api+json"


def _find_spec_dir() -> Path:
    configured = os.environ.get("KLAVIYO_OPENAPI_DIR")
    if configured:
        return Path(configured)
    for candidate in SPEC_DIR_CANDIDATES:
        if (candidate / SPEC_FILE_NAME).is_file():
            return candidate
    return SPEC_DIR_CANDIDATES[0]


SPEC_DIR = _find_spec_dir()

_LOOKED_IN = (
    str(SPEC_DIR)
    if os.environ.get("KLAVIYO_OPENAPI_DIR")
    else " and ".join(dict.fromkeys(str(path) for path in SPEC_DIR_CANDIDATES))
)
SKIP_REASON = (
    f"Klaviyo's OpenAPI spec folder was not found: looked for {SPEC_FILE_NAME} "
    f"in {_LOOKED_IN} (set KLAVIYO_OPENAPI_DIR to point elsewhere)."
)


def spec_available() -> bool:
    """Whether the spec file can be read."""
    return (SPEC_DIR / SPEC_FILE_NAME).is_file()


requires_klaviyo_spec = pytest.mark.skipif(not spec_available(), reason=SKIP_REASON)


@pytest.fixture
def klaviyo_spec():
    """``request_body_errors``, or a skip with SKIP_REASON without the spec.

    Available where this module is imported or listed in ``pytest_plugins``.
    """
    if not spec_available():
        pytest.skip(SKIP_REASON)
    return request_body_errors


@cache
def _load_spec() -> dict:
    with (SPEC_DIR / SPEC_FILE_NAME).open(encoding="utf-8") as spec_file:
        return json.load(spec_file)


@cache
def _registry() -> Registry:
    resource = DRAFT4.create_resource(_load_spec())
    return Registry().with_resource(SPEC_URI, resource)


def _escape_pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@cache
def _operation_pointer(operation_id: str) -> str:
    for path, path_item in _load_spec()["paths"].items():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and (
                operation.get("operationId") == operation_id
            ):
                return f"/paths/{_escape_pointer_token(path)}/{method}"
    raise KeyError(f"No operation {operation_id!r} in {SPEC_DIR / SPEC_FILE_NAME}")


@cache
def _validator(schema_pointer: str) -> OAS30Validator:
    return OAS30Validator(
        {"$ref": f"{SPEC_URI}#{schema_pointer}"},
        registry=_registry(),
        format_checker=oas30_format_checker,
    )


def _errors(schema_pointer: str, instance: object) -> list[str]:
    validator = _validator(schema_pointer)
    found = sorted(
        validator.iter_errors(instance),
        key=lambda error: [str(part) for part in error.absolute_path],
    )
    return [f"{_json_pointer(error.path)}: {error.message}" for error in found]


def _json_pointer(parts) -> str:
    return "".join("/" + _escape_pointer_token(str(part)) for part in parts)


def request_body_errors(operation_id: str, body: object) -> list[str]:
    """Problems with ``body`` as the JSON:API request body of the operation.

    Each problem reads ``<JSON pointer>: <message>``; the list is empty when the
    spec accepts the body.
    """
    media_type = _escape_pointer_token(JSON_API_MEDIA_TYPE)
    pointer = (
        f"{_operation_pointer(operation_id)}/requestBody/content/{media_type}/schema"
    )
    return _errors(pointer, body)


def response_body_errors(operation_id: str, status: str, body: object) -> list[str]:
    """Problems with ``body`` as the operation's JSON:API answer.

    ``status`` is the key of the response in the spec: ``"200"`` or ``"4XX"``.
    """
    pointer = f"{_operation_pointer(operation_id)}/responses/{status}"
    response = _resolve(pointer)
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
    media_type = _escape_pointer_token(JSON_API_MEDIA_TYPE)
    return _errors(f"{pointer}/content/{media_type}/schema", body)


def _resolve(pointer: str) -> dict:
    node = _load_spec()
    for token in pointer.split("/")[1:]:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node
