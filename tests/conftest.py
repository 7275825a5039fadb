"""Settings shared by every test.

Hypothesis's per-example deadline (200 ms by default) times the test on the wall clock: on the
shared, loaded machine a correct example can take longer and fail as DeadlineExceeded. Speed
targets live in bench/, never in unit tests, so the deadline is off for every property test.
"""

import threading

import pytest
from hypothesis import settings
from tools.sendgrid_standin import SendGridStandIn

settings.register_profile("warp", deadline=None)
settings.load_profile("warp")


@pytest.fixture
def sendgrid():
    """The SendGrid stand-in (tools/sendgrid_standin.py) on a free port for one test; its ``mails``."""
    server = SendGridStandIn(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
