"""Real processes of the product (workers, commands) against the test
database and the sandbox, for the pipeline tests."""

import contextlib

from integrations.benchmarks.processes import (  # noqa: F401
    manage,
    stop,
    wait_until,
)
from integrations.benchmarks.processes import product_env as _product_env


def product_env(sandbox_url, **overrides):
    """A worker's environment on the test database, pointed at the sandbox."""
    return _product_env(sandbox_url, **{"Q_WORKERS": 2, **overrides})


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
