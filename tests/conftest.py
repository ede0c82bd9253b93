import pytest

pytest_plugins = ["tests.sandbox_fixtures", "tests.klaviyo_helpers"]

# A fixed Fernet key for the tests; pytest-django runs with DEBUG off, where
# the development key is refused.
TEST_ENCRYPTION_KEY = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0xMjM="


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    settings.ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]
