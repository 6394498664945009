"""
setuptools entry point; metadata and dependencies are in setup.cfg.

``twisted.plugins`` (no ``__init__.py``, as Twisted requires) is listed by hand so ``twistd``
finds the ``stellarflow`` dropin once installed.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["stellarflow", "stellarflow.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["stellarflow_plugin.py"]},
)
