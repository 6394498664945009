"""
The README's two set-up commands stay true: CI runs the same test command, and the default
config it names exists.
"""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import REPO


def read(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


class ReadmeTests(SynchronousTestCase):
    def commands(self):
        return re.findall(r"^    (python3 -m venv .*)$", read("README.md"), re.M)

    def test_exactlyTwoSetupCommands(self):
        self.assertEqual(len(self.commands()), 2)

    def test_ciRunsTheReadmeTestCommand(self):
        test = [c for c in self.commands() if "trial" in c]
        self.assertEqual(len(test), 1)
        self.assertIn(test[0] + " 2>&1 | tee", read(".ci", "run"))

    def test_daemonCommandNamesAConfigThatExists(self):
        [run] = [c for c in self.commands() if "twistd" in c]
        config = re.search(r"-c (\S+)", run).group(1)
        self.assertTrue(os.path.exists(os.path.join(REPO, config)), config)
