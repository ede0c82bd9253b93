"""How many events a second the sandbox accepts through the bulk endpoint.

The server runs alone in a child process (one core: it is one Python process
under the GIL, and pinned to one CPU where the platform allows). This process
is the client: a few threads, each sending one request after another, send
bodies of 1,000 events with fresh ``unique_id`` values, so that every event
is validated, matched to a profile, deduplicated and stored. The rate is read
from the server's own ``events_accepted`` counter over a steady-state window
that starts after a warm-up.
"""

import http.client
import json
import multiprocessing
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass

import psutil

from integrations.sandbox.config import SandboxConfig
from integrations.sandbox.control import SandboxControl

BULK_PATH = "/api/event-bulk-create-jobs"
REVISION = "2026-07-15"
# Replaced in each request so that no two requests share a unique_id.
_REQUEST_MARK = b"@REQUEST@"


@dataclass(frozen=True)
class BenchmarkSettings:
    """What the benchmark sends, and for how long."""

    seconds: float = 10.0
    warmup_seconds: float = 2.0
    connections: int = 4
    events_per_request: int = 1_000
    events_per_profile: int = 1
    # Recipients cycle through this many people, so profiles are both created
    # and found again, as they are in a real export.
    distinct_profiles: int = 20_000
    pin_cpus: bool = True
    max_stored_events: int = 200_000


def bulk_body_template(settings: BenchmarkSettings, offset: int) -> bytes:
    """A bulk body shaped like the exporter's, with a mark in each unique_id."""
    groups = []
    event_number = 0
    profile_count = settings.events_per_request // settings.events_per_profile
    for profile_index in range(profile_count):
        person = (offset + profile_index) % settings.distinct_profiles
        events = []
        for _ in range(settings.events_per_profile):
            events.append(
                {
                    "type": "event",
                    "attributes": {
                        "metric": {
                            "data": {
                                "type": "metric",
                                "attributes": {"name": "Message Delivered"},
                            }
                        },
                        "properties": {
                            "channel": "email",
                            "status": "delivered",
                            "message_id": f"msg-{event_number:06d}",
                            "provider": "sandbox-mail",
                            "template": "order-shipped",
                            "campaign": "autumn-sale",
                            "attempt": 1,
                            "status_detail": {"code": 250, "reason": "accepted"},
                            "tags": ["transactional", "shipping"],
                        },
                        "time": "2026-01-15T10:30:00+00:00",
                        "value": 0,
                        "unique_id": "@REQUEST@-" + f"{event_number:06d}",
                    },
                }
            )
            event_number += 1
        groups.append(
            {
                "type": "event-bulk-create",
                "attributes": {
                    "profile": {
                        "data": {
                            "type": "profile",
                            "attributes": {
                                "email": f"person{person}@example.com",
                                "phone_number": f"+1415555{person % 10_000:04d}",
                            },
                        }
                    },
                    "events": {"data": events},
                },
            }
        )
    body = {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": groups}},
        }
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _serve(config: SandboxConfig, pipe, cpu: int | None) -> None:
    from integrations.sandbox.server import SandboxServer

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    server = SandboxServer(config)
    server.bind()
    pipe.send(server.url)
    pipe.close()
    server.serve_forever()


class _Sender(threading.Thread):
    """Sends bulk bodies one after another until told to stop.

    Werkzeug's server closes the connection after each answer; http.client
    opens the next one by itself.
    """

    def __init__(self, host, port, headers, templates, stop, name):
        super().__init__(name=name, daemon=True)
        self.host, self.port = host, port
        self.headers = headers
        self.templates = templates
        self.stop = stop
        self.statuses: dict[int, int] = {}

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        number = 0
        while not self.stop.is_set():
            template = self.templates[number % len(self.templates)]
            mark = f"{self.name}-{number}".encode()
            body = template.replace(_REQUEST_MARK, mark)
            connection.request("POST", BULK_PATH, body=body, headers=self.headers)
            response = connection.getresponse()
            response.read()
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
            number += 1
        connection.close()


def run_benchmark(settings: BenchmarkSettings) -> dict:
    """Start a sandbox in a child process, load it, and report the rate."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = settings.pin_cpus and len(cpus) >= 2
    server_cpu = cpus[0] if pin else None
    config = SandboxConfig(
        port=0,
        rate_limits_enabled=False,
        max_stored_events=settings.max_stored_events,
    )
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_serve, args=(config, sender, server_cpu), daemon=True
    )
    process.start()
    try:
        if not receiver.poll(30):
            raise RuntimeError("The sandbox did not start within 30 seconds.")
        url = receiver.recv()
        if pin:
            os.sched_setaffinity(0, set(cpus[1:]))
        return _measure(settings, url, process.pid, server_cpu)
    finally:
        process.terminate()
        process.join(10)


def _measure(
    settings: BenchmarkSettings, url: str, server_pid: int, server_cpu: int | None
) -> dict:
    control = SandboxControl(url)
    token = control.issue_grant("DEMO01", ["events:write"])["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "revision": REVISION,
        "Content-Type": "application/vnd.api+json",
        "Accept": "application/vnd.api+json",
    }
    templates = [
        bulk_body_template(settings, offset)
        for offset in range(0, settings.distinct_profiles, settings.events_per_request)
    ]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stop = threading.Event()
    senders = [
        _Sender(host, int(port), headers, templates, stop, f"c{index}")
        for index in range(settings.connections)
    ]
    server_process = psutil.Process(server_pid)
    for sender in senders:
        sender.start()
    time.sleep(settings.warmup_seconds)
    before = control.stats()
    cpu_before = server_process.cpu_times()
    started = time.perf_counter()
    time.sleep(settings.seconds)
    after = control.stats()
    cpu_after = server_process.cpu_times()
    elapsed = time.perf_counter() - started
    stop.set()
    for sender in senders:
        sender.join(timeout=60)
    control.close()
    accepted = after["events_accepted"] - before["events_accepted"]
    server_cpu_seconds = (cpu_after.user + cpu_after.system) - (
        cpu_before.user + cpu_before.system
    )
    statuses: dict[str, int] = {}
    for sender in senders:
        for status, count in sender.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    return {
        "events_per_s": round(accepted / elapsed),
        "events_accepted": accepted,
        "requests_per_s": round((after["requests"] - before["requests"]) / elapsed, 1),
        "measured_seconds": round(elapsed, 2),
        "server_cpu_utilisation": round(server_cpu_seconds / elapsed, 2),
        "events_rejected": after["events_rejected"],
        "client_statuses": statuses,
        "body_bytes": len(templates[0]),
        "settings": {
            **asdict(settings),
            "validation": True,
            "rate_limits": False,
            "server_cpu": server_cpu,
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
