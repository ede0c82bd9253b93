from tests.klaviyo_helpers import (  # noqa: F401
    SCOPES,
    connect,
    connection,
    klaviyo,
    send_messages,
)
