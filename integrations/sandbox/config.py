"""What the sandbox accepts at start-up, and the demo accounts it plays."""

from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8000/integrations/klaviyo/oauth/callback",
    "http://localhost:8000/integrations/klaviyo/oauth/callback",
)
DEFAULT_ACCESS_TOKEN_TTL = 3600
DEFAULT_AUTHORIZATION_CODE_TTL = 60
# Klaviyo expires a refresh token after 90 days without use.
DEFAULT_REFRESH_TOKEN_IDLE_TTL = 90 * 24 * 3600
# Oldest events are dropped from the listing past this many; their
# deduplication keys are kept, so a late duplicate is still recognised.
DEFAULT_MAX_STORED_EVENTS = 1_000_000


@dataclass(frozen=True)
class DemoAccount:
    """A Klaviyo account a person can connect on the consent page."""

    id: str
    organization_name: str
    default_sender_email: str
    website_url: str
    timezone: str = "America/New_York"
    preferred_currency: str = "USD"
    locale: str = "en-US"


DEMO_ACCOUNTS = (
    DemoAccount(
        id="DEMO01",
        organization_name="Demo Outfitters",
        default_sender_email="hello@demo-outfitters.example",
        website_url="https://demo-outfitters.example",
    ),
    DemoAccount(
        id="DEMO02",
        organization_name="Demo Coffee Roasters",
        default_sender_email="beans@demo-coffee.example",
        website_url="https://demo-coffee.example",
        timezone="Europe/Berlin",
        preferred_currency="EUR",
        locale="de-DE",
    ),
    DemoAccount(
        id="DEMO03",
        organization_name="Demo Pet Supplies",
        default_sender_email="care@demo-pets.example",
        website_url="https://demo-pets.example",
        timezone="America/Los_Angeles",
    ),
)


@dataclass
class SandboxConfig:
    """Start-up settings; ``POST /sandbox/reset`` returns to these values."""

    host: str = DEFAULT_HOST
    # 0 binds a free port, which ``SandboxServer.url`` then reports.
    port: int = DEFAULT_PORT
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    authorization_code_ttl: int = DEFAULT_AUTHORIZATION_CODE_TTL
    refresh_token_idle_ttl: int = DEFAULT_REFRESH_TOKEN_IDLE_TTL
    rate_limits_enabled: bool = True
    rate_limit_scale: float = 1.0
    max_stored_events: int = DEFAULT_MAX_STORED_EVENTS
    # Private API keys for legacy connections: key -> account id.
    api_keys: dict[str, str] = field(default_factory=dict)
    accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS


# The settings that ``POST /sandbox/config`` may change at run time.
RUNTIME_SETTINGS = (
    "redirect_uris",
    "access_token_ttl",
    "authorization_code_ttl",
    "refresh_token_idle_ttl",
    "rate_limits_enabled",
    "rate_limit_scale",
    "max_stored_events",
)
