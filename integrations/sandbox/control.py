"""A small client of the sandbox's ``/sandbox/*`` control API.

For tests, benchmarks and chaos runs: it resets the sandbox, reads what it
recorded, injects faults, mints tokens and moves its clock.
"""

import time

import requests

DEFAULT_TIMEOUT = (3.05, 10)


class SandboxControlError(RuntimeError):
    """The control API refused a request; carries the status and answer."""

    def __init__(self, status_code: int, body: str):
        super().__init__(f"Sandbox control API answered {status_code}: {body[:500]}")
        self.status_code = status_code
        self.body = body


class SandboxControl:
    """Drives one sandbox at ``url`` (for example ``http://127.0.0.1:8765``)."""

    def __init__(self, url: str, *, server=None, timeout=DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        # The in-process SandboxServer, when the caller started one.
        self.server = server
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self._session.request(
            method,
            f"{self.url}/sandbox/{path}",
            timeout=self.timeout,
            allow_redirects=False,
            **kwargs,
        )
        if response.status_code >= 400:
            raise SandboxControlError(response.status_code, response.text)
        return response.json()

    def reset(self) -> None:
        """Forget everything: events, profiles, grants, faults, settings, clock."""
        self._call("POST", "reset")

    def stats(self, account: str | None = None) -> dict:
        params = {"account": account} if account else None
        return self._call("GET", "stats", params=params)

    def events(
        self,
        metric: str | None = None,
        profile: str | None = None,
        unique_id: str | None = None,
        account: str | None = None,
    ) -> list[dict]:
        """Every stored event matching the filters, in arrival order."""
        filters = {
            "metric": metric,
            "profile": profile,
            "unique_id": unique_id,
            "account": account,
        }
        params = {name: value for name, value in filters.items() if value is not None}
        found: list[dict] = []
        while True:
            page = self._call("GET", "events", params={**params, "offset": len(found)})
            found.extend(page["events"])
            if not page["events"] or len(found) >= page["total"]:
                return found

    def accounts(self) -> list[dict]:
        return self._call("GET", "accounts")["accounts"]

    def set_faults(self, **faults) -> dict:
        """Merge faults into the current set; see ``faults.py`` for the keys."""
        return self._call("POST", "faults", json=faults)

    def clear_faults(self) -> dict:
        return self._call("POST", "faults/clear")

    def faults(self) -> dict:
        return self._call("GET", "faults")

    def configure(self, **settings) -> dict:
        """Change run-time settings, such as ``rate_limit_scale=0.1``."""
        return self._call("POST", "config", json=settings)

    def config(self) -> dict:
        return self._call("GET", "config")

    def issue_grant(self, account_id: str, scopes: list[str]) -> dict:
        """Tokens as if a person had consented: access and refresh token, etc."""
        return self._call(
            "POST", "grants", json={"account_id": account_id, "scopes": scopes}
        )

    def register_api_key(self, account_id: str) -> str:
        """A new private API key with full access to ``account_id``."""
        return self._call("POST", "api-keys", json={"account_id": account_id})[
            "api_key"
        ]

    def revoke_grants(self, account_id: str) -> int:
        """Revoke every grant of an account, as an uninstall does; how many."""
        return self._call("POST", "grants/revoke", json={"account_id": account_id})[
            "revoked"
        ]

    def freeze_clock(self, at: float | None = None) -> float:
        """Stop the sandbox's clock, at ``at`` (epoch seconds) or now."""
        body = {"freeze": True} if at is None else {"freeze": True, "at": at}
        return self._call("POST", "clock", json=body)["now"]

    def advance_clock(self, seconds: float) -> float:
        return self._call("POST", "clock", json={"advance": seconds})["now"]

    def unfreeze_clock(self) -> float:
        return self._call("POST", "clock", json={"freeze": False})["now"]

    def wait_for_events(
        self, count: int, *, account: str | None = None, timeout: float = 10.0
    ) -> dict:
        """Poll until ``events_accepted`` reaches ``count``; the last stats.

        Raises TimeoutError when it does not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats(account)
            if stats["events_accepted"] >= count:
                return stats
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{stats['events_accepted']} events accepted after {timeout} s; "
                    f"expected {count}."
                )
            time.sleep(0.05)
