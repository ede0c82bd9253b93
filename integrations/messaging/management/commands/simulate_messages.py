import random
import sys
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from integrations.messaging.choices import Channel
from integrations.messaging.models import Brand
from integrations.messaging.simulation import (
    SimulationResult,
    TrafficMix,
    callbacks_report,
    traffic_plan,
    traffic_simulate,
)

# In --forever mode each round's messages leave within this time before it.
_LIVE_SPAN = timedelta(seconds=1)


class Command(BaseCommand):
    help = (
        "Simulate a brand's message traffic: 1-on-1 and campaign messages on "
        "every channel, with inbound messages, live chat and messages that "
        "never leave mixed in, their statuses reported the way a provider's "
        "callbacks report them (in batches, sometimes late, out of order or "
        "twice, some failed, some to unparseable phone numbers)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--brand",
            action="append",
            metavar="SLUG",
            help="A brand to simulate (repeatable; default: every brand).",
        )
        parser.add_argument(
            "--one-to-one",
            type=int,
            default=20,
            help="1-on-1 messages per brand and round (default 20).",
        )
        parser.add_argument(
            "--campaign-size",
            type=int,
            default=0,
            help="Recipients of one campaign per brand and round (default none).",
        )
        parser.add_argument(
            "--campaign-channel",
            choices=Channel.values,
            default=Channel.SMS,
            help="The campaign's channel (default sms).",
        )
        parser.add_argument(
            "--hours",
            type=float,
            default=1.0,
            help="Spread the statuses over this many past hours (default 1).",
        )
        parser.add_argument(
            "--forever",
            action="store_true",
            help="Keep simulating live traffic, one round every --interval "
            "seconds, until interrupted; every --campaign-every rounds "
            "includes a campaign.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="Seconds between rounds with --forever (default 5).",
        )
        parser.add_argument(
            "--campaign-every",
            type=int,
            default=12,
            help="With --forever, a campaign every this many rounds (default 12).",
        )
        parser.add_argument("--seed", type=int, help="Seed for a repeatable run.")
        parser.add_argument(
            "--quiet", action="store_true", help="Hide the progress bar."
        )

    def handle(self, *args, **options):
        brands = self._brands(options["brand"])
        rng = random.Random(options["seed"])
        if options["forever"]:
            self._forever(brands, rng, options)
            return
        mix = self._mix(options, campaign=True)
        end = timezone.now()
        start = end - timedelta(hours=options["hours"])
        started = time.monotonic()
        total = SimulationResult()
        with tqdm(
            unit="update",
            file=sys.stderr,
            disable=True if options["quiet"] else None,
        ) as bar:
            for brand in brands:
                result = traffic_simulate(
                    brand, mix, start=start, end=end, rng=rng, progress=bar.update
                )
                _add(total, result)
        self.stdout.write(
            f"Simulated {total.messages} messages and {total.status_updates} status "
            f"updates for {len(brands)} brand(s): {total.events_recorded} Klaviyo "
            f"events recorded, in {time.monotonic() - started:.1f} s."
        )

    def _forever(self, brands, rng, options):
        """Live traffic: each round sends new messages now, and reports the
        provider callbacks that have come due by then; the others wait for
        a later round, as a provider's receipts arrive seconds later."""
        self.stdout.write(
            f"Simulating live traffic for {len(brands)} brand(s) every "
            f"{options['interval']:g} s; Ctrl-C stops."
        )
        round_number = 0
        waiting = []
        try:
            while True:
                round_number += 1
                with_campaign = round_number % max(1, options["campaign_every"]) == 0
                mix = self._mix(options, campaign=with_campaign)
                now = timezone.now()
                for brand in Brand.objects.filter(
                    pk__in=[brand.pk for brand in brands]
                ):
                    _, callbacks = traffic_plan(
                        brand, mix, start=now - _LIVE_SPAN, end=now, rng=rng
                    )
                    waiting.extend(callbacks)
                due = [pair for pair in waiting if pair[0] <= now]
                waiting = [pair for pair in waiting if pair[0] > now]
                result = callbacks_report(due)
                self.stdout.write(
                    f"Round {round_number}: {result.status_updates} status updates, "
                    f"{result.events_recorded} Klaviyo events recorded"
                    + (" (a campaign started)." if with_campaign else ".")
                )
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            self.stdout.write(f"Stopped after {round_number} round(s).")

    def _mix(self, options, *, campaign):
        one_to_one = options["one_to_one"]
        campaign_size = options["campaign_size"] if campaign else 0
        if options["forever"] and campaign and not campaign_size:
            campaign_size = 300
        if one_to_one < 0 or campaign_size < 0:
            raise CommandError("Message counts cannot be negative.")
        return TrafficMix(
            one_to_one=one_to_one,
            campaign_recipients=campaign_size,
            campaign_channel=options["campaign_channel"],
            inbound=max(1, one_to_one // 4),
            live_chat=max(1, one_to_one // 6),
            never_sent=max(1, one_to_one // 6),
        )

    def _brands(self, slugs):
        if not slugs:
            brands = list(Brand.objects.all())
            if not brands:
                raise CommandError(
                    "There are no brands yet; run `manage.py seed_demo`."
                )
            return brands
        brands = list(Brand.objects.filter(slug__in=slugs))
        missing = sorted(set(slugs) - {brand.slug for brand in brands})
        if missing:
            raise CommandError(f"No brand with slug {', '.join(missing)}.")
        return brands


def _add(total, result):
    total.messages += result.messages
    total.status_updates += result.status_updates
    total.events_recorded += result.events_recorded
    total.campaign_ids.extend(result.campaign_ids)
