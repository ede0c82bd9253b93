"""Klaviyo's OAuth server: authorization codes, grants and their tokens.

A grant is what one consent creates: an account, the scopes, and the tokens
minted from it. Refresh tokens rotate; presenting one that was already used
revokes the whole grant, as does a second use of an authorization code.
"""

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

# Scopes Klaviyo's OAuth apps may ask for; anything else is refused.
KNOWN_SCOPES = frozenset(
    f"{resource}:{access}"
    for resource in (
        "accounts",
        "campaigns",
        "catalogs",
        "coupons",
        "data-privacy",
        "events",
        "flows",
        "images",
        "lists",
        "metrics",
        "profiles",
        "push-tokens",
        "reviews",
        "segments",
        "subscriptions",
        "tags",
        "templates",
        "tracking-settings",
        "webhooks",
    )
    for access in ("read", "write")
)
# RFC 7636: 43 to 128 unreserved characters.
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}", re.ASCII)


class OAuthError(Exception):
    """An OAuth error answer: RFC 6749 ``error`` code and a description."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class Grant:
    """The tokens one consent produced, and whether it still holds."""

    id: str
    account_id: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float
    scopes: tuple[str, ...]


@dataclass
class RefreshToken:
    grant: Grant
    last_used_at: float
    used: bool = False


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    account_id: str
    expires_at: float
    used: bool = False
    grant: Grant | None = None


@dataclass(frozen=True)
class TokenSet:
    """What ``POST /oauth/token`` answers."""

    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]
    account_id: str

    def as_json(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": " ".join(self.scopes),
        }


@dataclass(frozen=True)
class Authentication:
    """Who an API request speaks for."""

    account_id: str
    # The quota owner: an OAuth app's client id, or "private-key".
    app: str
    scopes: frozenset[str] | None
    grant_id: str | None = None

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


def parse_scopes(scope: str | None) -> tuple[str, ...]:
    """The scopes of a space-separated ``scope`` parameter; raises OAuthError."""
    scopes = tuple(dict.fromkeys((scope or "").split()))
    if not scopes:
        raise OAuthError("invalid_scope", "The scope parameter is missing.")
    unknown = [name for name in scopes if name not in KNOWN_SCOPES]
    if unknown:
        raise OAuthError("invalid_scope", f"Unknown scope: {', '.join(unknown)}.")
    return scopes


def s256_challenge(code_verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthStore:
    """Codes, grants and tokens; every method is safe across threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._codes: dict[str, AuthorizationCode] = {}
        self._grants: dict[str, Grant] = {}
        self._access_tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}

    # -- authorization codes -----------------------------------------------

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        code_challenge: str,
        scopes: tuple[str, ...],
        account_id: str,
        now: float,
        ttl: float,
    ) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthorizationCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                scopes=scopes,
                account_id=account_id,
                expires_at=now + ttl,
            )
        return code

    def exchange_code(
        self,
        *,
        code: str,
        client_id: str,
        redirect_uri: str,
        code_verifier: str,
        now: float,
        access_token_ttl: int,
    ) -> TokenSet:
        """Tokens for an authorization code.

        A code works once. Presenting it again revokes the grant it produced
        (RFC 6749, section 4.1.2); a failed PKCE check spends it too.
        """
        with self._lock:
            stored = self._codes.get(code)
            if stored is None or stored.client_id != client_id:
                raise OAuthError("invalid_grant", "The authorization code is unknown.")
            if stored.used:
                if stored.grant is not None:
                    self._revoke(stored.grant)
                raise OAuthError(
                    "invalid_grant", "The authorization code was already used."
                )
            stored.used = True
            if now >= stored.expires_at:
                raise OAuthError("invalid_grant", "The authorization code expired.")
            if redirect_uri != stored.redirect_uri:
                raise OAuthError(
                    "invalid_grant",
                    "redirect_uri differs from the one of the authorization request.",
                )
            if _CODE_VERIFIER.fullmatch(code_verifier) is None:
                raise OAuthError(
                    "invalid_grant",
                    "code_verifier must be 43 to 128 unreserved characters.",
                )
            if not hmac.compare_digest(
                s256_challenge(code_verifier), stored.code_challenge
            ):
                raise OAuthError(
                    "invalid_grant", "code_verifier does not match the code_challenge."
                )
            grant = self._new_grant(
                stored.account_id, stored.client_id, stored.scopes, now
            )
            stored.grant = grant
            return self._mint(grant, now, access_token_ttl)

    # -- grants ------------------------------------------------------------

    def issue_grant(
        self,
        *,
        account_id: str,
        client_id: str,
        scopes: tuple[str, ...],
        now: float,
        access_token_ttl: int,
    ) -> TokenSet:
        """Tokens as if a person had just consented."""
        with self._lock:
            grant = self._new_grant(account_id, client_id, scopes, now)
            return self._mint(grant, now, access_token_ttl)

    def refresh(
        self,
        *,
        refresh_token: str,
        client_id: str,
        scope: str | None,
        now: float,
        access_token_ttl: int,
        idle_ttl: int,
    ) -> TokenSet:
        """New tokens for a refresh token, which is spent in the process.

        Presenting a spent refresh token revokes the grant: with rotation, a
        replay means two parties hold the token, and only one can be trusted.
        """
        with self._lock:
            stored = self._refresh_tokens.get(refresh_token)
            if stored is None or stored.grant.client_id != client_id:
                raise OAuthError("invalid_grant", "The refresh token is unknown.")
            grant = stored.grant
            if grant.revoked:
                raise OAuthError("invalid_grant", "The grant was revoked.")
            if stored.used:
                self._revoke(grant)
                raise OAuthError(
                    "invalid_grant",
                    "The refresh token was already used; the grant is revoked.",
                )
            if now - stored.last_used_at > idle_ttl:
                raise OAuthError("invalid_grant", "The refresh token expired.")
            scopes = grant.scopes
            if scope:
                requested = tuple(dict.fromkeys(scope.split()))
                if not set(requested) <= set(grant.scopes):
                    raise OAuthError(
                        "invalid_scope", "The scope exceeds what the grant allows."
                    )
                scopes = requested
            stored.used = True
            return self._mint(grant, now, access_token_ttl, scopes)

    def revoke_token(self, token: str, client_id: str) -> Grant | None:
        """Revoke the grant of an access or refresh token (RFC 7009).

        An unknown token, or one of another client, changes nothing.
        """
        with self._lock:
            stored = self._refresh_tokens.get(token) or self._access_tokens.get(token)
            if stored is None or stored.grant.client_id != client_id:
                return None
            if stored.grant.revoked:
                return None
            self._revoke(stored.grant)
            return stored.grant

    def revoke_account(self, account_id: str) -> list[Grant]:
        """Revoke every live grant of an account, as an uninstall does."""
        with self._lock:
            revoked = [
                grant
                for grant in self._grants.values()
                if grant.account_id == account_id and not grant.revoked
            ]
            for grant in revoked:
                self._revoke(grant)
            return revoked

    def expire_access_tokens(self, account_id: str | None, now: float) -> int:
        """Make live access tokens expire now; the refresh tokens still work."""
        with self._lock:
            expired = 0
            for token in self._access_tokens.values():
                if account_id is not None and token.grant.account_id != account_id:
                    continue
                if token.expires_at > now:
                    token.expires_at = now
                    expired += 1
            return expired

    def grant_counts(self, account_id: str | None = None) -> dict[str, int]:
        """Live and revoked grants, of one account or of all."""
        with self._lock:
            grants = [
                grant
                for grant in self._grants.values()
                if account_id is None or grant.account_id == account_id
            ]
        revoked = sum(1 for grant in grants if grant.revoked)
        return {"grants_active": len(grants) - revoked, "revocations": revoked}

    # -- API authentication ------------------------------------------------

    def authenticate(self, access_token: str, now: float) -> Authentication:
        """Who a Bearer token speaks for; raises OAuthError when it cannot."""
        with self._lock:
            stored = self._access_tokens.get(access_token)
            if stored is None:
                raise OAuthError("invalid_token", "The access token is unknown.", 401)
            if stored.grant.revoked:
                raise OAuthError("invalid_token", "The access token was revoked.", 401)
            if now >= stored.expires_at:
                raise OAuthError("invalid_token", "The access token expired.", 401)
            grant = stored.grant
            return Authentication(
                account_id=grant.account_id,
                app=grant.client_id,
                scopes=frozenset(stored.scopes),
                grant_id=grant.id,
            )

    def account_of(self, access_token: str) -> str | None:
        """The account a token was issued for, valid or not; for statistics."""
        with self._lock:
            stored = self._access_tokens.get(access_token)
            return stored.grant.account_id if stored else None

    # -- internals (the lock is held) --------------------------------------

    def _new_grant(
        self, account_id: str, client_id: str, scopes: tuple[str, ...], now: float
    ) -> Grant:
        grant = Grant(
            id=secrets.token_hex(8),
            account_id=account_id,
            client_id=client_id,
            scopes=scopes,
            created_at=now,
        )
        self._grants[grant.id] = grant
        return grant

    def _mint(
        self,
        grant: Grant,
        now: float,
        access_token_ttl: int,
        scopes: tuple[str, ...] | None = None,
    ) -> TokenSet:
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32)
        scopes = scopes or grant.scopes
        self._access_tokens[access_token] = AccessToken(
            grant=grant, expires_at=now + access_token_ttl, scopes=scopes
        )
        self._refresh_tokens[refresh_token] = RefreshToken(
            grant=grant, last_used_at=now
        )
        return TokenSet(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=access_token_ttl,
            scopes=scopes,
            account_id=grant.account_id,
        )

    def _revoke(self, grant: Grant) -> None:
        # The tokens stay in the indexes so that a later use is told apart
        # from an unknown token: revoked, not unknown.
        grant.revoked = True
