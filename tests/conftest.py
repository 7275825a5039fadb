"""Settings shared by every test.

Hypothesis's per-example deadline (200 ms by default) times the test on the wall clock: on the
shared, loaded machine a correct example can take longer and fail as DeadlineExceeded. Speed
targets live in bench/, never in unit tests, so the deadline is off for every property test.
"""

from hypothesis import settings

settings.register_profile("warp", deadline=None)
settings.load_profile("warp")
