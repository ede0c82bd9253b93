from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Registers the `klaviyo_sandbox` command; the server itself is plain WSGI."""

    name = "integrations.sandbox"
    label = "sandbox"
    verbose_name = "Klaviyo sandbox"
