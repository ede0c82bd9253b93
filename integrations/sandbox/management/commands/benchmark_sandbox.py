"""``manage.py benchmark_sandbox``: measure the sandbox's bulk throughput."""

import json

from django.core.management.base import BaseCommand, CommandError

from integrations.sandbox.benchmark import BenchmarkSettings, run_benchmark

_DEFAULTS = BenchmarkSettings()


class Command(BaseCommand):
    help = (
        "Start the Klaviyo sandbox in a child process, send it bulk bodies of "
        "1,000 events from a few connections with validation on, and print "
        "a JSON object with events_per_s and the settings used."
    )
    # The sandbox stands alone: the product's checks are not its business.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds",
            type=float,
            default=_DEFAULTS.seconds,
            help=f"Length of the measured window (default {_DEFAULTS.seconds:g}).",
        )
        parser.add_argument(
            "--warmup-seconds",
            type=float,
            default=_DEFAULTS.warmup_seconds,
            help="Load sent before measuring starts "
            f"(default {_DEFAULTS.warmup_seconds:g}).",
        )
        parser.add_argument(
            "--connections",
            type=int,
            default=_DEFAULTS.connections,
            help="Client threads sending at the same time "
            f"(default {_DEFAULTS.connections}).",
        )
        parser.add_argument(
            "--events-per-request",
            type=int,
            default=_DEFAULTS.events_per_request,
            help="Events in each bulk body, at most 1000 "
            f"(default {_DEFAULTS.events_per_request}).",
        )
        parser.add_argument(
            "--events-per-profile",
            type=int,
            default=_DEFAULTS.events_per_profile,
            help="Events grouped under each profile "
            f"(default {_DEFAULTS.events_per_profile}).",
        )
        parser.add_argument(
            "--no-pin",
            action="store_true",
            help="Do not pin the server and the client to separate CPUs.",
        )

    def handle(self, *args, **options):
        if not 1 <= options["events_per_request"] <= 1_000:
            raise CommandError("--events-per-request must be 1 to 1000.")
        if options["events_per_request"] % options["events_per_profile"]:
            raise CommandError(
                "--events-per-request must be a multiple of --events-per-profile."
            )
        if options["connections"] < 1 or options["seconds"] <= 0:
            raise CommandError("--connections and --seconds must be above 0.")
        settings = BenchmarkSettings(
            seconds=options["seconds"],
            warmup_seconds=options["warmup_seconds"],
            connections=options["connections"],
            events_per_request=options["events_per_request"],
            events_per_profile=options["events_per_profile"],
            pin_cpus=not options["no_pin"],
        )
        if options["verbosity"] >= 1:
            self.stderr.write(
                f"Measuring for {settings.seconds:g} s after a "
                f"{settings.warmup_seconds:g} s warm-up..."
            )
        result = run_benchmark(settings)
        self.stdout.write(json.dumps(result, indent=2))
