from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from integrations.klaviyo.models import KlaviyoConnection
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import KlaviyoConnectionFactory

pytestmark = pytest.mark.django_db

NEW_KEY = "bmV3LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGVzLTEyMzQ="


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def ciphertexts():
    return list(
        KlaviyoConnection.objects.order_by("pk").values_list(
            "access_token_ciphertext",
            "refresh_token_ciphertext",
            "legacy_api_key_ciphertext",
        )
    )


def test_generate_encryption_key_prints_a_new_fernet_key():
    first = run("generate_encryption_key").strip()
    second = run("generate_encryption_key").strip()

    assert first != second
    assert Fernet(first).decrypt(Fernet(first).encrypt(b"x")) == b"x"


def test_rotation_is_a_dry_run_unless_applied(settings):
    KlaviyoConnectionFactory()
    KlaviyoConnectionFactory(legacy=True)
    before = ciphertexts()
    settings.ENCRYPTION_KEYS = [NEW_KEY, TEST_ENCRYPTION_KEY]

    output = run("rotate_encryption_keys")

    assert output == (
        "Dry run: 3 secrets of 2 connections would be re-encrypted with the "
        "first key; 0 could not be read. Run again with --apply to write them.\n"
    )
    assert ciphertexts() == before


def test_rotation_applied_lets_the_old_key_be_removed(settings):
    oauth = KlaviyoConnectionFactory(access_token="access-1", refresh_token="refresh-1")
    legacy = KlaviyoConnectionFactory(legacy=True, legacy_api_key="pk_legacy_1")
    KlaviyoConnectionFactory(access_token="", refresh_token="")
    settings.ENCRYPTION_KEYS = [NEW_KEY, TEST_ENCRYPTION_KEY]

    output = run("rotate_encryption_keys", "--apply")
    settings.ENCRYPTION_KEYS = [NEW_KEY]

    assert output == (
        "Re-encrypted 3 secrets of 2 connections with the first key; 0 changed "
        "meanwhile and already use it; 0 could not be read.\n"
    )
    oauth.refresh_from_db()
    legacy.refresh_from_db()
    assert (oauth.access_token, oauth.refresh_token) == ("access-1", "refresh-1")
    assert legacy.legacy_api_key == "pk_legacy_1"


def test_rotation_names_connections_no_key_can_read_and_writes_nothing_for_them(
    settings,
):
    unreadable = KlaviyoConnectionFactory()
    before = ciphertexts()
    settings.ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(CommandError) as refused:
        run("rotate_encryption_keys", "--apply")

    assert str(refused.value) == (
        f"1 connections hold secrets that no key in ENCRYPTION_KEYS can read "
        f"(ids {unreadable.pk}). Put back the key that encrypted them before "
        "removing any key."
    )
    assert ciphertexts() == before
