from django.core.management.base import BaseCommand

from integrations.klaviyo import secrets


class Command(BaseCommand):
    help = (
        "Print a new Fernet key for ENCRYPTION_KEYS. To rotate, put it first "
        "in ENCRYPTION_KEYS, keep the old keys after it, then run "
        "rotate_encryption_keys --apply."
    )

    def handle(self, *args, **options):
        self.stdout.write(secrets.generate_key())
