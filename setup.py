"""
Packaging for gomail_twisted: metadata lives in setup.cfg.

The twistd plugin module sits in C{twisted/plugins/} with no C{__init__.py}
(that would shadow Twisted's own package), so it is listed by hand here.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["gomail_twisted", "gomail_twisted.*"]),
        "twisted.plugins",
    ],
)
