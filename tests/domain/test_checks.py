import subprocess
import sys

from django.conf import settings as django_settings
from django.core import checks

from integrations.klaviyo.checks import (
    check_encryption_keys,
    check_task_retry_exceeds_timeout,
)


def test_a_task_retry_not_longer_than_its_timeout_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120, "retry": 120}

    problems = check_task_retry_exceeds_timeout(None)

    assert [(problem.id, problem.level) for problem in problems] == [
        ("klaviyo.E001", checks.ERROR)
    ]
    assert (
        problems[0].msg
        == "Q_CLUSTER retry (120 s) must be longer than its timeout (120 s)."
    )


def test_a_retry_longer_than_the_timeout_passes(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120, "retry": 180}

    assert check_task_retry_exceeds_timeout(None) == []


def test_the_workers_refuse_to_start_with_such_a_configuration():
    result = subprocess.run(
        [sys.executable, "manage.py", "qcluster"],
        cwd=django_settings.BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "Q_TIMEOUT": "300",
            "Q_RETRY": "60",
            "VAR_DIR": "/tmp",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "klaviyo.E001" in result.stderr
    assert (
        "Q_CLUSTER retry (60 s) must be longer than its timeout (300 s)."
        in result.stderr
    )


def test_production_without_encryption_keys_is_an_error(settings):
    settings.DEBUG = False
    settings.ENCRYPTION_KEYS = []

    assert [problem.id for problem in check_encryption_keys(None)] == ["klaviyo.E002"]
