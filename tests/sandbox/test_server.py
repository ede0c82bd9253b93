import json
import threading
import time

import pytest
import requests

from integrations.sandbox.config import SandboxConfig
from integrations.sandbox.control import SandboxControl
from integrations.sandbox.server import SandboxServer
from tests.sandbox.helpers import TIMEOUT, api_headers, event_body


def test_a_server_on_port_zero_binds_a_free_port_and_releases_it():
    with SandboxServer(SandboxConfig(port=0)) as server:
        url = server.url
        answer = requests.get(f"{url}/sandbox/accounts", timeout=TIMEOUT)

    assert url.startswith("http://127.0.0.1:")
    assert not url.endswith(":0")
    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/sandbox/accounts", timeout=TIMEOUT)


def test_two_servers_keep_separate_state(sandbox):
    with SandboxServer(SandboxConfig(port=0)) as other_server:
        other = SandboxControl(other_server.url)
        token = other.issue_grant("DEMO01", ["events:write"])["access_token"]
        requests.post(
            f"{other_server.url}/api/events",
            data=json.dumps(event_body()),
            headers=api_headers(token),
            timeout=TIMEOUT,
        )

        assert other.stats()["events_accepted"] == 1
        assert sandbox.stats()["events_accepted"] == 0


def test_configured_api_keys_work_from_the_start():
    config = SandboxConfig(port=0, api_keys={"pk_demo": "DEMO02"})

    with SandboxServer(config) as server:
        answer = requests.get(
            f"{server.url}/api/accounts",
            headers=api_headers("pk_demo", api_key=True),
            timeout=TIMEOUT,
        )

    assert answer.json()["data"][0]["id"] == "DEMO02"


def test_stopping_cuts_a_held_answer_short():
    server = SandboxServer(SandboxConfig(port=0)).start()
    control = SandboxControl(server.url)
    token = control.issue_grant("DEMO01", ["events:write"])["access_token"]
    control.set_faults(hang_after_accept={"count": 1, "seconds": 30})
    answers = []
    request = threading.Thread(
        target=lambda: answers.append(
            requests.post(
                f"{server.url}/api/events",
                data=json.dumps(event_body()),
                headers=api_headers(token),
                timeout=(3, 30),
            )
        )
    )
    request.start()
    control.wait_for_events(1, timeout=5)

    started = time.monotonic()
    server.stop()
    request.join(timeout=10)

    assert time.monotonic() - started < 5
    assert [answer.status_code for answer in answers] == [202]
