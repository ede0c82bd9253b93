from io import StringIO

import pytest
from django.core.management import call_command

# The `klaviyo` and `connection` fixtures come from tests.klaviyo_helpers,
# which tests/conftest.py loads for every folder.


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # seed_demo hashes and checks several passwords per run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_command(*args):
    """Run a management command; return what it wrote to stdout."""
    stdout = StringIO()
    call_command(*args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()
