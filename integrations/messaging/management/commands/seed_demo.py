from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from integrations.messaging.management.demo import demo_data_seed

# Where `make run` serves the site.
SITE_URL = "http://127.0.0.1:8000"
# The order of the summary line.
KINDS = (
    "user",
    "brand",
    "membership",
    "store",
    "staff member",
    "customer",
    "campaign",
    "Klaviyo connection",
)


class Command(BaseCommand):
    help = (
        "Create the demo data of `make run`: an admin superuser, three brands "
        "(two ready to connect with OAuth, one on a legacy private API key), "
        "a login per brand, stores, staff, customers and campaigns. Safe to "
        "run again: only missing rows are created."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default="admin",
            help="Password of the demo logins when they are created (default "
            "admin); existing users keep theirs.",
        )

    def handle(self, *args, password, **options):
        if not password:
            raise CommandError("--password must not be empty.")
        result = demo_data_seed(password)
        for login in result.logins:
            who = f"{login.username} / {password}"
            if not login.password_matches:
                who = f"{login.username}, whose existing password was left unchanged"
            if login.brand_name:
                self.stdout.write(f"Login for {login.brand_name} only: {who}")
            else:
                self.stdout.write(f"Admin (every brand): {SITE_URL}/admin/ as {who}")
        for brand, connection in result.brands:
            page = SITE_URL + reverse("klaviyo:integration", args=[brand.slug])
            if connection is None:
                state = "ready to connect with OAuth"
            elif connection.is_legacy:
                state = "legacy private API key, exports nothing until upgraded"
            else:
                state = f"connected ({connection.get_state_display().lower()})"
            self.stdout.write(f"{brand.name}: {state} at {page}")
        if result.created:
            counts = ", ".join(
                _counted(result.created[kind], kind)
                for kind in KINDS
                if result.created[kind]
            )
            self.stdout.write(f"Created {counts}.")
        else:
            self.stdout.write("Nothing new: the demo data was already there.")


def _counted(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
