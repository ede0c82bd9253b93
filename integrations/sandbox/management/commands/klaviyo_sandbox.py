"""``manage.py klaviyo_sandbox``: run the local Klaviyo stand-in."""

import logging
import sys

from django.core.management.base import BaseCommand, CommandError

from integrations.sandbox.config import (
    DEFAULT_ACCESS_TOKEN_TTL,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REDIRECT_URIS,
    SandboxConfig,
)
from integrations.sandbox.server import SandboxServer


def _api_key(value: str) -> tuple[str, str]:
    key, separator, account_id = value.partition("=")
    if not separator or not key or not account_id:
        raise CommandError(f"--api-key takes KEY=ACCOUNT_ID, not {value!r}.")
    return key, account_id


def config_from_options(options: dict) -> SandboxConfig:
    """The sandbox configuration the command-line options describe."""
    if options["rate_limit_scale"] <= 0:
        raise CommandError("--rate-limit-scale must be above 0.")
    if options["access_token_ttl"] < 1:
        raise CommandError("--access-token-ttl must be 1 second or more.")
    config = SandboxConfig(
        host=options["host"],
        port=options["port"],
        client_id=options["client_id"],
        client_secret=options["client_secret"],
        redirect_uris=tuple(options["redirect_uris"] or DEFAULT_REDIRECT_URIS),
        access_token_ttl=options["access_token_ttl"],
        rate_limits_enabled=not options["no_rate_limits"],
        rate_limit_scale=options["rate_limit_scale"],
        api_keys=dict(_api_key(value) for value in options["api_keys"] or []),
    )
    known = {account.id for account in config.accounts}
    unknown = sorted(set(config.api_keys.values()) - known)
    if unknown:
        raise CommandError(
            f"--api-key names unknown accounts: {', '.join(unknown)}; the demo "
            f"accounts are {', '.join(sorted(known))}."
        )
    return config


class Command(BaseCommand):
    help = (
        "Run the Klaviyo sandbox: a local server that plays Klaviyo's OAuth "
        "server and events API, with demo accounts, rate limits and faults on "
        "demand. It serves until interrupted."
    )
    # The sandbox stands alone: the product's checks are not its business.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=DEFAULT_HOST,
            help=f"Interface to listen on (default {DEFAULT_HOST}).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"Port to listen on; 0 picks a free one (default {DEFAULT_PORT}).",
        )
        parser.add_argument(
            "--client-id",
            default=DEFAULT_CLIENT_ID,
            help=f"OAuth client id the sandbox accepts (default {DEFAULT_CLIENT_ID}).",
        )
        parser.add_argument(
            "--client-secret",
            default=DEFAULT_CLIENT_SECRET,
            help="OAuth client secret the sandbox accepts "
            f"(default {DEFAULT_CLIENT_SECRET}).",
        )
        parser.add_argument(
            "--redirect-uri",
            action="append",
            dest="redirect_uris",
            metavar="URI",
            help="A registered OAuth redirect URI, matched exactly; repeat for "
            f"several (default: {' and '.join(DEFAULT_REDIRECT_URIS)}).",
        )
        parser.add_argument(
            "--access-token-ttl",
            type=int,
            default=DEFAULT_ACCESS_TOKEN_TTL,
            help=f"Seconds an access token lives (default {DEFAULT_ACCESS_TOKEN_TTL}).",
        )
        parser.add_argument(
            "--rate-limit-scale",
            type=float,
            default=1.0,
            help="Multiply every rate limit by this factor, never below one "
            "request per window (default 1.0; 0.1 is a tenth).",
        )
        parser.add_argument(
            "--no-rate-limits",
            action="store_true",
            help="Switch rate limiting off.",
        )
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            metavar="KEY=ACCOUNT_ID",
            help="Accept a private API key for a demo account (legacy "
            "connections); repeat for several.",
        )

    def handle(self, *args, **options):
        config = config_from_options(options)
        server = SandboxServer(config)
        try:
            server.bind()
        except OSError as error:
            raise CommandError(
                f"Cannot listen on {config.host}:{config.port}: {error}"
            ) from error
        if options["verbosity"] >= 2:
            sandbox_logger = logging.getLogger("integrations.sandbox")
            sandbox_logger.setLevel(logging.DEBUG)
            sandbox_logger.addHandler(logging.StreamHandler(sys.stderr))
        self._describe(server)
        server.serve_forever()
        self.stdout.write("Klaviyo sandbox stopped.")

    def _describe(self, server: SandboxServer) -> None:
        config = server.config
        write = self.stdout.write
        write(f"Klaviyo sandbox listening on {server.url}")
        write(f"  Recent events: {server.url}/sandbox/")
        write(f"  OAuth client id: {config.client_id}")
        write(f"  OAuth client secret: {config.client_secret}")
        write(f"  Redirect URIs: {', '.join(config.redirect_uris)}")
        write("  Demo accounts:")
        for account in config.accounts:
            write(f"    {account.id}  {account.organization_name}")
        for key, account_id in config.api_keys.items():
            write(f"  Private API key for {account_id}: {key}")
        if config.rate_limits_enabled:
            write(f"  Rate limits: on, scale {config.rate_limit_scale:g}")
        else:
            write("  Rate limits: off")
        write(f"  Access tokens live {config.access_token_ttl} s")
        write("Press Ctrl-C to stop.")
        self.stdout.flush()
