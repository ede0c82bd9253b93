import os

import pytest

pytest_plugins = [
    "tests.sandbox_fixtures",
    "tests.klaviyo_helpers",
    "tests.klaviyo_spec",
]

# A fixed Fernet key for the tests; pytest-django runs with DEBUG off, where
# the development key is refused.
TEST_ENCRYPTION_KEY = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0xMjM="


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    settings.ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]


# A test may be skipped on one database because it proves the other's code
# path; every other skip fails a run made with REQUIRE_ALL_TESTS (CI).
ALLOWED_SKIP_PREFIX = "database-specific:"


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("REQUIRE_ALL_TESTS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    refused = []
    for report in reporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if not reason.removeprefix("Skipped: ").startswith(ALLOWED_SKIP_PREFIX):
            refused.append(f"{report.nodeid}: {reason}")
    if refused:
        reporter.write_line(
            "REQUIRE_ALL_TESTS is set and these tests were skipped:", red=True
        )
        for line in refused:
            reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
