import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from integrations.klaviyo.connections import (
    SECRET_FIELDS,
    connection_secrets_reencrypt,
)
from integrations.klaviyo.models import KlaviyoConnection
from integrations.klaviyo.secrets import SecretDecryptionError


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Klaviyo token and API key with the first key "
        "of ENCRYPTION_KEYS, so that older keys can then be removed. A dry run "
        "(every secret is read, nothing is written) unless --apply is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Write the re-encrypted secrets. Without it, only check that "
            "every secret can be read and count them.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Connections read from the database per query (default 500).",
        )

    def handle(self, *args, apply, batch_size, **options):
        has_secret = Q()
        for name in SECRET_FIELDS:
            has_secret |= ~Q(**{name: ""})
        connections = KlaviyoConnection.objects.filter(has_secret).order_by("pk")
        secret_count = connection_count = skipped = 0
        unreadable = []
        for connection in tqdm(
            connections.iterator(chunk_size=batch_size),
            total=connections.count(),
            unit="connection",
            file=sys.stderr,
            disable=None,
        ):
            try:
                count, written = connection_secrets_reencrypt(connection, apply=apply)
            except SecretDecryptionError:
                unreadable.append(connection.pk)
                continue
            if apply and not written:
                skipped += 1
                continue
            secret_count += count
            connection_count += 1
        if apply:
            summary = (
                f"Re-encrypted {secret_count} secrets of {connection_count} "
                f"connections with the first key; {skipped} changed meanwhile "
                f"and already use it; {len(unreadable)} could not be read."
            )
        else:
            summary = (
                f"Dry run: {secret_count} secrets of {connection_count} "
                f"connections would be re-encrypted with the first key; "
                f"{len(unreadable)} could not be read. Run again with --apply "
                "to write them."
            )
        self.stdout.write(summary)
        if unreadable:
            listed = ", ".join(str(pk) for pk in unreadable[:20])
            raise CommandError(
                f"{len(unreadable)} connections hold secrets that no key in "
                f"ENCRYPTION_KEYS can read (ids {listed}). Put back the key "
                "that encrypted them before removing any key."
            )
