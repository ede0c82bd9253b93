import json

from django.core.management.base import BaseCommand

from integrations.benchmarks.harness import Benchmark, Plan


class Command(BaseCommand):
    help = (
        "Measure the export pipeline on the configured database against a "
        "Klaviyo sandbox of its own: ingest overhead and bulk ingest, capacity "
        "with limits off, use of Klaviyo's (scaled) ceiling with limits on, "
        "1-on-1 latency while a campaign backlog drains, the speed-up over a "
        "naive exporter, worker memory, and lost or doubled events. Creates "
        "its own brands and deletes them at the end; takes 5 to 8 minutes."
    )

    def add_arguments(self, parser):
        defaults = Plan()
        parser.add_argument(
            "--backlog",
            type=int,
            default=defaults.backlog,
            help=f"Events in the campaign backlog (default {defaults.backlog:,}).",
        )
        parser.add_argument(
            "--singles",
            type=int,
            default=defaults.singles,
            help="Single status changes per side of the ingest overhead "
            f"(default {defaults.singles:,}).",
        )
        parser.add_argument(
            "--ceiling-seconds",
            type=float,
            default=defaults.ceiling_seconds,
            help="Length of the rate-limited phase; at least 150 for two full "
            f"minute windows (default {defaults.ceiling_seconds:g}).",
        )
        parser.add_argument(
            "--limit-scale",
            type=float,
            default=defaults.limit_scale,
            help="Fraction of Klaviyo's limits the sandbox and the exporter keep "
            f"in the rate-limited phase (default {defaults.limit_scale:g}).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=defaults.workers,
            help=f"Worker processes in the cluster (default {defaults.workers}).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object and nothing else.",
        )

    def handle(self, *args, **options):
        plan = Plan(
            backlog=options["backlog"],
            singles=options["singles"],
            ceiling_seconds=options["ceiling_seconds"],
            limit_scale=options["limit_scale"],
            workers=options["workers"],
        )
        results = Benchmark(plan, say=self.stderr.write).run()
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
            return
        for key, value in results.items():
            self.stdout.write(f"{key}: {value}")
