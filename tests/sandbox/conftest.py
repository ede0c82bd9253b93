import math
import time

import pytest

from tests.sandbox.helpers import EXPORTER_SCOPES


@pytest.fixture
def token(sandbox):
    """An access token of DEMO01 with the exporter's scopes."""
    return sandbox.issue_grant("DEMO01", EXPORTER_SCOPES)["access_token"]


@pytest.fixture
def frozen_clock(sandbox):
    """The sandbox's clock, stopped half a second past the next minute.

    A burst window then ends 0.5 s later and the steady window 59.5 s later.
    Tokens issued before the freeze stay valid: they live an hour.
    """
    return sandbox.freeze_clock(math.floor(time.time() / 60) * 60 + 60.5)
