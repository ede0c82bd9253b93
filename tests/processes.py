"""Real processes of the product (workers, commands) against the test
database and the sandbox, for the pipeline tests."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from tests.conftest import TEST_ENCRYPTION_KEY

REPOSITORY = Path(__file__).resolve().parent.parent


def database_url():
    """The URL of the database the test is using (the test database)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] in ("project.sqlite", "django.db.backends.sqlite3"):
        return f"sqlite:///{database['NAME']}"
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def product_env(sandbox_url, **overrides):
    """The environment of a production-like process of the product."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "KLAVIYO_", "Q_", "REDIS_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DEBUG": "false",
            # Queued tasks are signed with it: the same key on both sides.
            "SECRET_KEY": settings.SECRET_KEY,
            "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
            "DATABASE_URL": database_url(),
            "KLAVIYO_API_URL": sandbox_url,
            "KLAVIYO_CLIENT_ID": "sandbox-client-id",
            "KLAVIYO_CLIENT_SECRET": "sandbox-client-secret",
            "Q_WORKERS": "2",
            "Q_POLL": "0.05",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def manage(*args, env, **kwargs):
    """Start ``manage.py <args>`` in its own process group."""
    return subprocess.Popen(
        [sys.executable, str(REPOSITORY / "manage.py"), *args],
        cwd=REPOSITORY,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def stop(process, *, timeout=20):
    """Stop a process and its children, politely first; return its output."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read() if process.stdout else ""


@contextlib.contextmanager
def qcluster(env):
    """A running django-q2 cluster of the product."""
    process = manage("qcluster", env=env)
    try:
        yield process
    except BaseException:
        print(stop(process))
        raise
    stop(process)


def wait_until(predicate, *, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout} s")
        time.sleep(interval)
