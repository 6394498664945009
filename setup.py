"""
setuptools entry point; metadata and dependencies are in setup.cfg.

``twisted.plugins`` (no ``__init__.py``, as Twisted requires) is listed by hand so ``twistd``
finds the ``stellarflow`` dropin once installed; its file, like the dashboard's, is package data
(``[options.package_data]`` in setup.cfg: a ``package_data`` argument here would replace it).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["stellarflow", "stellarflow.*"]) + ["twisted.plugins"],
)
