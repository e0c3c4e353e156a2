"""
The tests of gomail_twisted.

Hypothesis runs without its per-example deadline: that is a timing
assertion, and tests assert behaviour, not speed (a loaded machine, or
several trial workers, would fail them at random).
"""

from hypothesis import settings

settings.register_profile("gomail", deadline=None)
settings.load_profile("gomail")
