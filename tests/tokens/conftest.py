import pytest

from tests.web.sandbox_oauth import site_point_at_sandbox


@pytest.fixture
def klaviyo(settings, sandbox):
    """The sandbox, with the site's Klaviyo calls pointed at it."""
    site_point_at_sandbox(settings, sandbox, site_url="http://testserver")
    return sandbox
