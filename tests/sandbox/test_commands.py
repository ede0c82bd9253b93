import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management.base import CommandError

from integrations.sandbox.benchmark import BenchmarkSettings, run_benchmark
from integrations.sandbox.management.commands.klaviyo_sandbox import (
    Command,
    config_from_options,
)
from tests.sandbox.helpers import TIMEOUT

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def parsed(*arguments):
    parser = Command().create_parser("manage.py", "klaviyo_sandbox")
    return vars(parser.parse_args(list(arguments)))


def test_the_command_defaults_match_the_documented_interface():
    config = config_from_options(parsed())

    assert (config.host, config.port) == ("127.0.0.1", 8765)
    assert (config.client_id, config.client_secret) == (
        "sandbox-client-id",
        "sandbox-client-secret",
    )
    assert config.redirect_uris == (
        "http://127.0.0.1:8000/integrations/klaviyo/oauth/callback",
        "http://localhost:8000/integrations/klaviyo/oauth/callback",
    )
    assert config.access_token_ttl == 3600
    assert config.rate_limits_enabled is True
    assert config.rate_limit_scale == 1.0
    assert config.api_keys == {}


def test_every_option_reaches_the_configuration():
    config = config_from_options(
        parsed(
            "--host=0.0.0.0",
            "--port=9000",
            "--client-id=id",
            "--client-secret=secret",
            "--redirect-uri=https://a.example/cb",
            "--redirect-uri=https://b.example/cb",
            "--access-token-ttl=30",
            "--rate-limit-scale=0.1",
            "--no-rate-limits",
            "--api-key=pk_one=DEMO01",
            "--api-key=pk_two=DEMO03",
        )
    )

    assert (config.host, config.port) == ("0.0.0.0", 9000)
    assert (config.client_id, config.client_secret) == ("id", "secret")
    assert config.redirect_uris == ("https://a.example/cb", "https://b.example/cb")
    assert config.access_token_ttl == 30
    assert config.rate_limit_scale == 0.1
    assert config.rate_limits_enabled is False
    assert config.api_keys == {"pk_one": "DEMO01", "pk_two": "DEMO03"}


@pytest.mark.parametrize(
    "arguments",
    [
        ("--api-key=no-separator",),
        ("--api-key=pk_x=NOPE99",),
        ("--rate-limit-scale=0",),
        ("--access-token-ttl=0",),
    ],
)
def test_bad_options_are_command_errors(arguments):
    with pytest.raises(CommandError):
        config_from_options(parsed(*arguments))


def test_every_option_has_help():
    parser = Command().create_parser("manage.py", "klaviyo_sandbox")
    own = [
        action
        for action in parser._actions
        if action.dest
        in {
            "host",
            "port",
            "client_id",
            "client_secret",
            "redirect_uris",
            "access_token_ttl",
            "rate_limit_scale",
            "no_rate_limits",
            "api_keys",
        }
    ]

    assert len(own) == 9
    assert all(action.help for action in own)
    assert Command.help


@pytest.mark.slow
def test_the_command_serves_and_prints_how_to_connect():
    process = subprocess.Popen(
        [sys.executable, str(MANAGE_PY), "klaviyo_sandbox", "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        url = lines[0].removeprefix("Klaviyo sandbox listening on ")
        accounts = requests.get(f"{url}/sandbox/accounts", timeout=TIMEOUT)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert accounts.status_code == 200
    assert "  OAuth client id: sandbox-client-id" in lines
    assert "  OAuth client secret: sandbox-client-secret" in lines
    assert "    DEMO01  Demo Outfitters" in lines
    assert "  Rate limits: on, scale 1" in lines


@pytest.mark.slow
def test_the_benchmark_reports_accepted_events_per_second():
    settings = BenchmarkSettings(
        seconds=0.5,
        warmup_seconds=0.2,
        connections=1,
        events_per_request=100,
        distinct_profiles=1000,
        pin_cpus=False,
    )

    result = run_benchmark(settings)

    # The figure itself is the command's business; a loaded test machine may
    # finish no request inside half a second, so only the shape is checked.
    assert isinstance(result["events_per_s"], int)
    assert result["events_per_s"] >= 0
    assert result["events_rejected"] == 0
    assert set(result["client_statuses"]) == {"202"}
    assert result["settings"]["validation"] is True
    assert result["settings"]["events_per_request"] == 100
    assert json.loads(json.dumps(result)) == result
