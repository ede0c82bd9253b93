"""The WSGI application that plays Klaviyo.

Three families of routes: ``/oauth/*`` (Klaviyo's OAuth server), ``/api/*``
(the three API operations the exporter uses) and ``/sandbox/*`` (the control
API and the recent-events page, which Klaviyo does not have).
"""

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox import pages
from integrations.sandbox.faults import FaultSpecError, InjectedResponse
from integrations.sandbox.oauth import (
    Authentication,
    OAuthError,
    parse_scopes,
)
from integrations.sandbox.ratelimit import (
    ENDPOINT_LIMITS,
    Decision,
    EndpointLimits,
    scaled_limit,
)
from integrations.sandbox.state import SandboxState, SettingsError
from integrations.sandbox.validation import (
    BodyCheck,
    InvalidBody,
    Problem,
    body_size_problem,
    check_bulk_create_events,
    check_create_event,
    parse_json_body,
)

logger = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
FORM = "application/x-www-form-urlencoded"
# Klaviyo's revision header: YYYY-MM-DD, optionally .suffix (e.g. ".pre").
_REVISION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", re.ASCII)
# A S256 code challenge is a base64url SHA-256 digest without padding.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
# A body bigger than this is not even read into memory.
_MAX_READ_BYTES = 64 * 1024 * 1024
_DEFAULT_EVENTS_PAGE = 1_000
_MAX_EVENTS_PAGE = 10_000
_RECENT_EVENTS_SHOWN = 50

_TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    410: "This API revision is no longer supported.",
    415: "Unsupported media type.",
    429: "Request was throttled.",
    500: "A server error occurred.",
    502: "Bad gateway.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
    524: "A timeout occurred.",
}
# Where one status has several codes, the code picks the title.
_TITLES_BY_CODE = {
    "authentication_failed": "Incorrect authentication credentials.",
    "parse_error": "Malformed request.",
}
_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    415: "unsupported_media_type",
    429: "throttled",
}


@dataclass(frozen=True)
class ApiOperation:
    """One Klaviyo API operation the sandbox serves."""

    name: str
    method: str
    scope: str
    # Checks the parsed body of a POST; None for a GET.
    check: Callable[[object, float], BodyCheck] | None = None


OPERATIONS = {
    "create_event": ApiOperation(
        "create_event", "POST", "events:write", check_create_event
    ),
    "bulk_create_events": ApiOperation(
        "bulk_create_events", "POST", "events:write", check_bulk_create_events
    ),
    "get_accounts": ApiOperation("get_accounts", "GET", "accounts:read"),
}


def api_error(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
    headers: dict | None = None,
) -> Response:
    """A JSON:API error answer with one error."""
    return api_errors(
        status,
        [
            _error_object(
                status, detail, code=code, pointer=pointer, parameter=parameter
            )
        ],
        headers=headers,
    )


def api_errors(
    status: int, errors: list[dict], headers: dict | None = None
) -> Response:
    return Response(
        json.dumps({"errors": errors}),
        status=status,
        content_type=JSON_API,
        headers=headers,
    )


def _error_object(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict:
    source = {"parameter": parameter} if parameter is not None else {}
    if not source:
        source = {"pointer": "/data" if pointer is None else pointer}
    code = code or _CODES.get(status, "error")
    return {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": _TITLES_BY_CODE.get(code) or _TITLES.get(status, "Error."),
        "detail": detail,
        "source": source,
    }


def _problems_response(problems: list[Problem], headers: dict) -> Response:
    return api_errors(
        400,
        [
            _error_object(400, problem.detail, pointer=problem.pointer)
            for problem in problems
        ],
        headers=headers,
    )


def oauth_error(error: OAuthError, headers: dict | None = None) -> Response:
    """An RFC 6749 error answer."""
    return _json(
        {"error": error.error, "error_description": error.description},
        status=error.status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


def _json(payload: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _html(page: str, status: int = 200) -> Response:
    return Response(page, status=status, content_type="text/html; charset=utf-8")


class ControlError(ValueError):
    """A control request the sandbox refuses; answered 400."""


class SandboxApp:
    """WSGI callable: ``SandboxApp(state)(environ, start_response)``."""

    def __init__(self, state: SandboxState):
        self.state = state
        self.url_map = Map(
            [
                Rule("/oauth/authorize", methods=["GET"], endpoint="authorize"),
                Rule("/oauth/authorize", methods=["POST"], endpoint="consent"),
                Rule("/oauth/token", methods=["POST"], endpoint="token"),
                Rule("/oauth/revoke", methods=["POST"], endpoint="revoke"),
                *_api_rules("/api/accounts", "get_accounts", "GET"),
                *_api_rules("/api/events", "create_event", "POST"),
                *_api_rules(
                    "/api/event-bulk-create-jobs", "bulk_create_events", "POST"
                ),
                Rule("/sandbox/", methods=["GET"], endpoint="home"),
                Rule("/sandbox/reset", methods=["POST"], endpoint="reset"),
                Rule("/sandbox/stats", methods=["GET"], endpoint="stats"),
                Rule("/sandbox/events", methods=["GET"], endpoint="events"),
                Rule("/sandbox/accounts", methods=["GET"], endpoint="accounts"),
                Rule("/sandbox/faults", methods=["GET", "POST"], endpoint="faults"),
                Rule("/sandbox/faults/clear", methods=["POST"], endpoint="clear"),
                Rule("/sandbox/config", methods=["GET", "POST"], endpoint="config"),
                Rule("/sandbox/clock", methods=["GET", "POST"], endpoint="clock"),
                Rule("/sandbox/grants", methods=["POST"], endpoint="grants"),
                Rule(
                    "/sandbox/grants/revoke", methods=["POST"], endpoint="grants_revoke"
                ),
                Rule("/sandbox/api-keys", methods=["POST"], endpoint="api_keys"),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = _MAX_READ_BYTES
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        is_api = request.path.startswith("/api/")
        try:
            endpoint, _values = adapter.match()
        except RequestRedirect as redirect:
            return redirect.get_response(request.environ)
        except NotFound:
            if is_api:
                return api_error(404, f"There is no API endpoint at {request.path}.")
            return _json({"error": f"Nothing at {request.path}."}, status=404)
        except MethodNotAllowed as refused:
            allowed = ", ".join(refused.valid_methods or [])
            if is_api:
                return api_error(
                    405,
                    f"{request.method} is not allowed here.",
                    headers={"Allow": allowed},
                )
            return _json(
                {"error": f"{request.method} is not allowed here."},
                status=405,
                headers={"Allow": allowed},
            )
        if endpoint in OPERATIONS:
            return self.api(request, OPERATIONS[endpoint])
        try:
            return getattr(self, f"on_{endpoint}")(request)
        except HTTPException as error:
            return error.get_response(request.environ)

    # -- API -----------------------------------------------------------------

    def api(self, request: Request, operation: ApiOperation) -> Response:
        state = self.state
        account_hint = self._account_hint(request)
        state.stats.add(account_hint, requests=1)
        try:
            raw = request.get_data(cache=False) if operation.method == "POST" else b""
        except RequestEntityTooLarge:
            # Far larger than anything Klaviyo takes: not even read.
            response, account_id = (
                api_error(
                    400, "The request body is far over 5,000,000 bytes.", pointer=""
                ),
                None,
            )
        else:
            response, account_id = self._api_response(
                request, operation, raw, account_hint
            )
        state.stats.record_response(
            account_id or account_hint, operation.name, response.status_code
        )
        return response

    def _api_response(
        self,
        request: Request,
        operation: ApiOperation,
        raw: bytes,
        account_hint: str | None,
    ) -> tuple[Response, str | None]:
        """The answer, and the account it was for once authenticated."""
        state = self.state
        faults = state.faults
        latency = faults.latency_seconds()
        if latency:
            time.sleep(latency)
        if faults.in_outage(state.clock.now()):
            state.stats.add(account_hint, faults_injected=1)
            return api_error(503, "The service is down for an outage."), None
        injected = faults.take_api_response()
        if injected is not None:
            state.stats.add(account_hint, faults_injected=1)
            return self._injected(injected), None
        hang = faults.take_hang()
        response, account_id = self._process(request, operation, raw)
        if hang is not None:
            state.stats.add(account_id or account_hint, faults_injected=1)
            logger.info(
                "Holding the answer to %s for %s s", operation.name, hang.seconds
            )
            state.hold(hang.seconds)
        return response, account_id

    def _injected(self, injected: InjectedResponse) -> Response:
        if injected.html:
            return _html(pages.edge_forbidden_page(), status=403)
        headers = {}
        if injected.status == 429:
            headers["Retry-After"] = str(injected.retry_after)
        return api_error(
            injected.status,
            "Injected by the sandbox's fault settings.",
            headers=headers,
        )

    def _process(
        self, request: Request, operation: ApiOperation, raw: bytes
    ) -> tuple[Response, str | None]:
        state = self.state
        revision = request.headers.get("revision")
        if not revision:
            return api_error(
                400, "The revision header is required.", parameter="revision"
            ), None
        if _REVISION.fullmatch(revision) is None:
            return api_error(
                400,
                "The revision header must read YYYY-MM-DD, such as 2026-07-15.",
                parameter="revision",
            ), None
        now = state.clock.now()
        authentication = self._authenticate(request, now)
        if isinstance(authentication, Response):
            return authentication, None
        account_id = authentication.account_id
        if not authentication.allows(operation.scope):
            return api_error(
                403,
                f"The access token lacks the {operation.scope} scope.",
                parameter="Authorization",
            ), account_id
        if (
            operation.method == "POST"
            and request.headers.get("Content-Type") != JSON_API
        ):
            return api_error(
                415,
                f"Content-Type must be {JSON_API}.",
                parameter="Content-Type",
            ), account_id
        decision = self._rate_limit(authentication, operation.name, now)
        if not decision.allowed:
            state.stats.add(account_id, rate_limited=1)
            return api_error(
                429,
                f"Request was throttled. Expected available in "
                f"{decision.retry_after} seconds.",
                headers=decision.headers(),
            ), account_id
        headers = decision.headers()
        if operation.name == "get_accounts":
            return self._accounts_response(request, account_id, headers), account_id
        too_large = body_size_problem(len(raw))
        if too_large is not None:
            state.stats.add(account_id, requests_rejected=1)
            return _problems_response([too_large], headers), account_id
        try:
            body = parse_json_body(raw)
        except InvalidBody as invalid:
            state.stats.add(account_id, requests_rejected=1)
            return api_error(
                400,
                invalid.problem.detail,
                code="parse_error",
                pointer="",
                headers=headers,
            ), account_id
        checked: BodyCheck = operation.check(body, now)
        if not checked.is_valid:
            state.stats.add(
                account_id,
                requests_rejected=1,
                events_rejected=checked.event_count,
            )
            return _problems_response(checked.problems, headers), account_id
        outcome = state.events.record(account_id, operation.name, checked.events, now)
        state.stats.add(
            account_id,
            events_accepted=outcome.accepted,
            events_deduplicated=outcome.deduplicated,
            profiles_created=outcome.profiles_created,
        )
        accepted = Response(status=202, headers=headers)
        # Klaviyo answers 202 with no body at all, so no media type either.
        del accepted.headers["Content-Type"]
        return accepted, account_id

    def _account_hint(self, request: Request) -> str | None:
        """The account a request names, valid credentials or not."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self.state.oauth.account_of(credential.strip())
        if scheme == "klaviyo-api-key":
            return self.state.account_for_api_key(credential.strip())
        return None

    def _authenticate(self, request: Request, now: float) -> Authentication | Response:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if scheme == "bearer" and credential:
            try:
                return self.state.oauth.authenticate(credential, now)
            except OAuthError as refused:
                return api_error(
                    401,
                    refused.description,
                    code="authentication_failed",
                    parameter="Authorization",
                    headers={
                        "WWW-Authenticate": 'Bearer error="invalid_token"',
                    },
                )
        if scheme == "klaviyo-api-key" and credential:
            account_id = self.state.account_for_api_key(credential)
            if account_id is None:
                return api_error(
                    401,
                    "The private API key is unknown.",
                    code="authentication_failed",
                    parameter="Authorization",
                )
            return Authentication(account_id=account_id, app="private-key", scopes=None)
        return api_error(
            401,
            "Send Authorization: Bearer <access token> or "
            "Klaviyo-API-Key <private key>.",
            parameter="Authorization",
        )

    def _rate_limit(
        self, authentication: Authentication, operation: str, now: float
    ) -> Decision:
        settings = self.state.settings
        base = ENDPOINT_LIMITS[operation]
        limits = EndpointLimits(
            burst=scaled_limit(base.burst, settings.rate_limit_scale),
            steady=scaled_limit(base.steady, settings.rate_limit_scale),
        )
        if not settings.rate_limits_enabled:
            reset = 60 - int(now) % 60
            return Decision(
                allowed=True,
                retry_after=0,
                limit=limits.steady,
                remaining=limits.steady,
                reset=reset,
            )
        # An OAuth app has its own quota in each account; private keys share one.
        key = (authentication.account_id, authentication.app, operation)
        return self.state.limiter.acquire(key, limits, now)

    def _accounts_response(
        self, request: Request, account_id: str, headers: dict
    ) -> Response:
        account = self.state.accounts[account_id]
        self_link = f"{request.host_url}api/accounts/{account.id}/"
        resource = {
            "type": "account",
            "id": account.id,
            "attributes": {
                "test_account": True,
                "contact_information": {
                    "default_sender_name": account.organization_name,
                    "default_sender_email": account.default_sender_email,
                    "website_url": account.website_url,
                    "organization_name": account.organization_name,
                    "street_address": {
                        "address1": "1 Sandbox Way",
                        "address2": None,
                        "city": "Boston",
                        "region": "MA",
                        "country": "US",
                        "zip": "02110",
                    },
                },
                "industry": "Retail",
                "timezone": account.timezone,
                "preferred_currency": account.preferred_currency,
                "public_api_key": account.id,
                "locale": account.locale,
            },
            "links": {"self": self_link},
        }
        payload = {
            "data": [resource],
            "links": {"self": f"{request.host_url}api/accounts/"},
        }
        return Response(
            json.dumps(payload), status=200, content_type=JSON_API, headers=headers
        )

    # -- OAuth ---------------------------------------------------------------

    def _authorization_request(self, params) -> tuple[dict, tuple[str, ...]]:
        """The checked parameters of an authorization request; raises ControlError.

        Nothing here redirects: a request that fails these checks cannot be
        trusted to name a safe place to send the browser back to.
        """
        settings = self.state.settings
        client_id = params.get("client_id", "")
        if not client_id:
            raise ControlError("The client_id parameter is missing.")
        if not hmac.compare_digest(client_id, self.state.config.client_id):
            raise ControlError(f"Unknown client_id {client_id!r}.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise ControlError("The redirect_uri parameter is missing.")
        if redirect_uri not in settings.redirect_uris:
            raise ControlError(
                f"redirect_uri {redirect_uri!r} is not registered for this app; "
                "it must match a registered URI exactly."
            )
        response_type = params.get("response_type", "")
        if response_type != "code":
            raise ControlError(f"response_type must be 'code', not {response_type!r}.")
        method = params.get("code_challenge_method", "")
        if method != "S256":
            raise ControlError(
                f"code_challenge_method must be 'S256' (PKCE), not {method!r}."
            )
        challenge = params.get("code_challenge", "")
        if _S256_CHALLENGE.fullmatch(challenge) is None:
            raise ControlError(
                "code_challenge must be the 43-character base64url SHA-256 of "
                "the code verifier."
            )
        try:
            scopes = parse_scopes(params.get("scope"))
        except OAuthError as refused:
            raise ControlError(refused.description) from refused
        checked = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": response_type,
            "scope": " ".join(scopes),
            "code_challenge_method": method,
            "code_challenge": challenge,
        }
        if params.get("state") is not None:
            checked["state"] = params["state"]
        return checked, scopes

    def on_authorize(self, request: Request) -> Response:
        self.state.stats.add(None, requests=1)
        try:
            checked, scopes = self._authorization_request(request.args)
        except ControlError as refused:
            return self._record(
                None,
                "oauth_authorize",
                _html(pages.authorization_error_page(str(refused)), status=400),
            )
        page = pages.consent_page(
            client_id=checked["client_id"],
            scopes=scopes,
            accounts=list(self.state.accounts.values()),
            redirect_uri=checked["redirect_uri"],
            hidden_fields=checked,
        )
        return self._record(None, "oauth_authorize", _html(page))

    def on_consent(self, request: Request) -> Response:
        state = self.state
        state.stats.add(None, requests=1)
        try:
            checked, scopes = self._authorization_request(request.form)
            account_id = request.form.get("account_id", "")
            if account_id not in state.accounts:
                raise ControlError(f"Unknown account {account_id!r}.")
            decision = request.form.get("decision")
            if decision not in ("allow", "deny"):
                raise ControlError("decision must be 'allow' or 'deny'.")
        except ControlError as refused:
            return self._record(
                None,
                "oauth_authorize",
                _html(pages.authorization_error_page(str(refused)), status=400),
            )
        answer = {}
        if decision == "allow":
            answer["code"] = state.oauth.issue_code(
                client_id=checked["client_id"],
                redirect_uri=checked["redirect_uri"],
                code_challenge=checked["code_challenge"],
                scopes=scopes,
                account_id=account_id,
                now=state.clock.now(),
                ttl=state.settings.authorization_code_ttl,
            )
            state.stats.add(account_id, authorization_codes_issued=1)
            logger.info("Issued an authorization code for account %s", account_id)
        else:
            answer["error"] = "access_denied"
            answer["error_description"] = "The user denied the request."
        if "state" in checked:
            answer["state"] = checked["state"]
        response = Response(status=302)
        response.headers["Location"] = _with_query(checked["redirect_uri"], answer)
        return self._record(account_id, "oauth_authorize", response)

    def _client(self, request: Request) -> OAuthError | None:
        """Check HTTP Basic client authentication; the error when it fails."""
        credentials = request.authorization
        config = self.state.config
        if (
            credentials is None
            or credentials.type != "basic"
            or not hmac.compare_digest(credentials.username or "", config.client_id)
            or not hmac.compare_digest(credentials.password or "", config.client_secret)
        ):
            return OAuthError(
                "invalid_client",
                "Client authentication failed: send the client id and secret "
                "with HTTP Basic.",
                status=401,
            )
        return None

    def _form(self, request: Request) -> dict[str, str]:
        if request.mimetype != FORM:
            raise OAuthError("invalid_request", f"The body must be {FORM}.")
        repeated = sorted(
            key for key in request.form if len(request.form.getlist(key)) > 1
        )
        if repeated:
            raise OAuthError(
                "invalid_request", f"Parameters sent twice: {', '.join(repeated)}."
            )
        return request.form.to_dict()

    def on_token(self, request: Request) -> Response:
        state = self.state
        state.stats.add(None, requests=1, token_requests=1)
        latency = state.faults.latency_seconds()
        if latency:
            time.sleep(latency)
        if state.faults.in_outage(state.clock.now()):
            state.stats.add(None, faults_injected=1)
            return self._record(
                None,
                "oauth_token",
                oauth_error(
                    OAuthError(
                        "temporarily_unavailable", "The service is down.", status=503
                    )
                ),
            )
        account_id = None
        try:
            form = self._form(request)
            client_error = self._client(request)
            if client_error is not None:
                return self._record(
                    None,
                    "oauth_token",
                    oauth_error(
                        client_error,
                        {"WWW-Authenticate": 'Basic realm="Klaviyo sandbox"'},
                    ),
                )
            tokens = self._grant_tokens(form)
        except OAuthError as refused:
            logger.info("Refused a token request: %s", refused.error)
            return self._record(None, "oauth_token", oauth_error(refused))
        account_id = tokens.account_id
        return self._record(
            account_id,
            "oauth_token",
            _json(
                tokens.as_json(),
                headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
            ),
        )

    def _grant_tokens(self, form: dict[str, str]):
        state = self.state
        settings = state.settings
        grant_type = form.get("grant_type")
        now = state.clock.now()
        if not grant_type:
            raise OAuthError("invalid_request", "The grant_type parameter is missing.")
        if grant_type == "authorization_code":
            for name in ("code", "redirect_uri", "code_verifier"):
                if not form.get(name):
                    raise OAuthError(
                        "invalid_request", f"The {name} parameter is missing."
                    )
            tokens = state.oauth.exchange_code(
                code=form["code"],
                client_id=state.config.client_id,
                redirect_uri=form["redirect_uri"],
                code_verifier=form["code_verifier"],
                now=now,
                access_token_ttl=settings.access_token_ttl,
            )
            logger.info("Exchanged a code for tokens of account %s", tokens.account_id)
            return tokens
        if grant_type == "refresh_token":
            if not form.get("refresh_token"):
                raise OAuthError(
                    "invalid_request", "The refresh_token parameter is missing."
                )
            tokens = state.oauth.refresh(
                refresh_token=form["refresh_token"],
                client_id=state.config.client_id,
                scope=form.get("scope"),
                now=now,
                access_token_ttl=settings.access_token_ttl,
                idle_ttl=settings.refresh_token_idle_ttl,
            )
            state.stats.add(tokens.account_id, token_refreshes=1)
            return tokens
        raise OAuthError(
            "unsupported_grant_type", f"grant_type {grant_type!r} is not supported."
        )

    def on_revoke(self, request: Request) -> Response:
        state = self.state
        state.stats.add(None, requests=1)
        try:
            form = self._form(request)
            client_error = self._client(request)
            if client_error is not None:
                return self._record(
                    None,
                    "oauth_revoke",
                    oauth_error(
                        client_error,
                        {"WWW-Authenticate": 'Basic realm="Klaviyo sandbox"'},
                    ),
                )
            if not form.get("token"):
                raise OAuthError("invalid_request", "The token parameter is missing.")
        except OAuthError as refused:
            return self._record(None, "oauth_revoke", oauth_error(refused))
        grant = state.oauth.revoke_token(form["token"], state.config.client_id)
        account_id = grant.account_id if grant else None
        if grant is not None:
            logger.info("Revoked a grant of account %s", account_id)
        # RFC 7009: an unknown token is answered 200 as well.
        return self._record(account_id, "oauth_revoke", Response(status=200))

    def _record(self, account_id: str | None, endpoint: str, response: Response):
        self.state.stats.record_response(account_id, endpoint, response.status_code)
        return response

    # -- control API ---------------------------------------------------------

    def _control_body(self, request: Request) -> dict:
        raw = request.get_data(cache=False)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise ControlError(f"The body is not valid JSON: {error}.") from error
        if not isinstance(body, dict):
            raise ControlError("The body must be a JSON object.")
        return body

    def _control(self, request: Request, action) -> Response:
        try:
            return _json(action(self._control_body(request)))
        except (ControlError, FaultSpecError, SettingsError) as refused:
            return _json({"error": str(refused)}, status=400)

    def _known_account(self, body: dict) -> str:
        account_id = body.get("account_id")
        if account_id not in self.state.accounts:
            raise ControlError(
                f"account_id must be one of {', '.join(self.state.accounts)}."
            )
        return account_id

    def on_home(self, request: Request) -> Response:
        state = self.state
        return _html(
            pages.events_page(
                events=state.events.recent(_RECENT_EVENTS_SHOWN),
                stats=state.stats.snapshot(),
                accounts=list(state.accounts.values()),
            )
        )

    def on_reset(self, request: Request) -> Response:
        self.state.reset()
        logger.info("Sandbox state reset")
        return _json({"reset": True})

    def on_stats(self, request: Request) -> Response:
        state = self.state
        account_id = request.args.get("account") or None
        snapshot = state.stats.snapshot(account_id)
        snapshot.update(state.events.counts(account_id))
        snapshot.update(state.oauth.grant_counts(account_id))
        if account_id is not None:
            snapshot["account_id"] = account_id
        return _json(snapshot)

    def on_events(self, request: Request) -> Response:
        args = request.args
        try:
            offset = int(args.get("offset", 0))
            limit = int(args.get("limit", _DEFAULT_EVENTS_PAGE))
        except ValueError:
            return _json({"error": "offset and limit must be whole numbers."}, 400)
        if offset < 0 or not 1 <= limit <= _MAX_EVENTS_PAGE:
            return _json(
                {"error": f"offset must be 0 or more, limit 1 to {_MAX_EVENTS_PAGE}."},
                400,
            )
        total, events = self.state.events.find(
            metric=args.get("metric"),
            profile=args.get("profile"),
            unique_id=args.get("unique_id"),
            account_id=args.get("account"),
            offset=offset,
            limit=limit,
        )
        return _json(
            {"total": total, "offset": offset, "limit": limit, "events": events}
        )

    def on_accounts(self, request: Request) -> Response:
        return _json(
            {
                "accounts": [
                    {"id": account.id, "organization_name": account.organization_name}
                    for account in self.state.accounts.values()
                ]
            }
        )

    def on_faults(self, request: Request) -> Response:
        state = self.state
        if request.method == "GET":
            return _json(state.faults.snapshot(state.clock.now()))

        def apply(body: dict) -> dict:
            body = dict(body)
            revoke = body.pop("revoke_grants", None)
            expire = body.pop("expire_access_tokens", None)
            # Check the actions first, so that a refused request changes nothing.
            if revoke is None:
                revoke = []
            elif not isinstance(revoke, list):
                revoke = [revoke]
            revoke_accounts = [
                self._known_account({"account_id": account_id}) for account_id in revoke
            ]
            if expire is not None and expire is not True:
                self._known_account({"account_id": expire})
            now = state.clock.now()
            state.faults.update(body, now)
            answer = state.faults.snapshot(now)
            if revoke_accounts:
                answer["grants_revoked"] = sum(
                    len(state.oauth.revoke_account(account_id))
                    for account_id in revoke_accounts
                )
            if expire is not None:
                answer["access_tokens_expired"] = state.oauth.expire_access_tokens(
                    None if expire is True else expire, now
                )
            logger.info("Faults updated: %s", sorted(body))
            return answer

        return self._control(request, apply)

    def on_clear(self, request: Request) -> Response:
        state = self.state
        state.faults.clear()
        state.release_hung_requests()
        return _json(state.faults.snapshot(state.clock.now()))

    def on_config(self, request: Request) -> Response:
        if request.method == "GET":
            return _json(self.state.settings.as_json())
        return self._control(request, lambda body: self.state.configure(body).as_json())

    def on_clock(self, request: Request) -> Response:
        clock = self.state.clock
        if request.method == "GET":
            return _json(clock.snapshot())

        def apply(body: dict) -> dict:
            if "freeze" in body:
                if body["freeze"] is True:
                    clock.freeze(body.get("at"))
                elif body["freeze"] is False:
                    clock.unfreeze()
                else:
                    raise ControlError("freeze must be true or false.")
            if "advance" in body:
                seconds = body["advance"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise ControlError("advance must be a number of seconds.")
                clock.advance(seconds)
            return clock.snapshot()

        return self._control(request, apply)

    def on_grants(self, request: Request) -> Response:
        state = self.state

        def issue(body: dict) -> dict:
            account_id = self._known_account(body)
            scopes = body.get("scopes", ["accounts:read", "events:write"])
            if not isinstance(scopes, list) or not all(
                isinstance(scope, str) for scope in scopes
            ):
                raise ControlError("scopes must be a list of scope names.")
            try:
                parsed = parse_scopes(" ".join(scopes))
            except OAuthError as refused:
                raise ControlError(refused.description) from refused
            tokens = state.oauth.issue_grant(
                account_id=account_id,
                client_id=state.config.client_id,
                scopes=parsed,
                now=state.clock.now(),
                access_token_ttl=state.settings.access_token_ttl,
            )
            return {**tokens.as_json(), "account_id": account_id}

        return self._control(request, issue)

    def on_grants_revoke(self, request: Request) -> Response:
        def revoke(body: dict) -> dict:
            account_id = self._known_account(body)
            revoked = self.state.oauth.revoke_account(account_id)
            logger.info("Revoked %s grants of account %s", len(revoked), account_id)
            return {"revoked": len(revoked)}

        return self._control(request, revoke)

    def on_api_keys(self, request: Request) -> Response:
        def register(body: dict) -> dict:
            account_id = self._known_account(body)
            return {
                "api_key": self.state.register_api_key(account_id),
                "account_id": account_id,
            }

        return self._control(request, register)


def _api_rules(path: str, endpoint: str, method: str) -> list[Rule]:
    # Klaviyo serves each path with and without the trailing slash.
    return [
        Rule(path, methods=[method], endpoint=endpoint),
        Rule(f"{path}/", methods=[method], endpoint=endpoint),
    ]


def _with_query(uri: str, parameters: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = urlencode(parameters)
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit(parts._replace(query=query))
