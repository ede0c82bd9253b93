"""Processes of the product (workers, the sandbox) started on this machine,
each in its own process group so that it stops with all its children."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings

from integrations.klaviyo.secrets import encryption_keys

REPOSITORY = settings.BASE_DIR


def database_url():
    """The URL of the database this process is using."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] in ("project.sqlite", "django.db.backends.sqlite3"):
        return f"sqlite:///{database['NAME']}"
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def product_env(api_url, **overrides):
    """A production-like environment for a worker of this process's
    database, pointed at ``api_url``."""
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
            "ENCRYPTION_KEYS": ",".join(encryption_keys()),
            "DATABASE_URL": database_url(),
            "KLAVIYO_API_URL": api_url,
            "KLAVIYO_CLIENT_ID": "sandbox-client-id",
            "KLAVIYO_CLIENT_SECRET": "sandbox-client-secret",
            "Q_POLL": "0.05",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def manage(*args, env, output=subprocess.PIPE):
    """Start ``manage.py <args>`` in its own process group."""
    return subprocess.Popen(
        [sys.executable, str(REPOSITORY / "manage.py"), *args],
        cwd=REPOSITORY,
        env=env,
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
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


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout} s")
        time.sleep(interval)
