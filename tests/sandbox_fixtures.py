"""Pytest fixtures that run the Klaviyo sandbox on a free port.

``sandbox_server`` starts one server for the whole session, rate limits on at
scale 1. ``sandbox`` resets its state, faults, settings and clock before each
test and hands over a ``SandboxControl`` with ``.url`` and ``.server``.
"""

import pytest

from integrations.sandbox.config import SandboxConfig
from integrations.sandbox.control import SandboxControl
from integrations.sandbox.server import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(SandboxConfig(port=0))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    control = SandboxControl(sandbox_server.url, server=sandbox_server)
    control.reset()
    yield control
    control.close()
