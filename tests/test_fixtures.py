"""
The committed fixtures are faithful copies: each has its source note, and each equals its
original in ../shared whenever that folder is present beside the repository.
"""

import filecmp
import os

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.testing import fixtures

# Where each committed fixture folder's originals live in ../shared.
ORIGINS = {"rpc": ("fixtures", "rpc"), "ledgers": ("fixtures", "ledgers"), "guide": ("seed",)}


def committed(folder):
    directory = os.path.join(fixtures.FIXTURES, folder)
    return sorted(n for n in os.listdir(directory) if not n.endswith(".source.txt"))


class FixtureTests(SynchronousTestCase):
    def test_everyFixtureHasItsSource(self):
        for folder in ORIGINS:
            names = committed(folder)
            self.assertTrue(names, folder)
            for name in names:
                source = os.path.join(fixtures.FIXTURES, folder, name + ".source.txt")
                if not os.path.exists(source):
                    source = os.path.join(fixtures.FIXTURES, folder, os.path.splitext(name)[0] + ".source.txt")
                self.assertTrue(os.path.exists(source), "{}/{} has no .source.txt".format(folder, name))

    def test_copiesEqualShared(self):
        """
        A fixture changed in ../shared (or here) is noticed: the copies must stay identical.
        Without ../shared (a user's clone) there is nothing to compare, and nothing is claimed.
        """
        if not os.path.isdir(fixtures.SHARED):
            return
        compared = 0
        for folder, origin in ORIGINS.items():
            for name in os.listdir(os.path.join(fixtures.FIXTURES, folder)):
                original = os.path.join(fixtures.SHARED, *origin, name)
                if name.endswith(".source.txt") and not os.path.exists(original):
                    continue  # our own note for a file that has none there (the guide)
                self.assertTrue(filecmp.cmp(original, os.path.join(fixtures.FIXTURES, folder, name), shallow=False),
                                "{}/{} differs from {}".format(folder, name, original))
                compared += 1
        self.assertGreater(compared, 30)
