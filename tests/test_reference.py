"""
docs/configuration.md is the generated reference, current with the code.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.reference import render
from tests.helpers import REPO


class ReferenceTests(SynchronousTestCase):
    def test_docsCurrent(self):
        with open(os.path.join(REPO, "docs", "configuration.md")) as f:
            written = f.read()
        self.assertEqual(
            written, render(), "docs/configuration.md is stale: run python -m stellarflow.reference > docs/configuration.md"
        )

    def test_everyKeyDocumented(self):
        """
        Every key of every public component has a line of documentation.
        """
        from stellarflow.reference import DOCUMENTED
        from stellarflow.registry import Registry

        registry = Registry(useEntryPoints=False)
        missing = []
        for role, names in DOCUMENTED.items():
            for name in names:
                for key, field in registry.lookup(role, name).configSchema.fields.items():
                    if not field.doc:
                        missing.append("{}.{}".format(name, key))
        self.assertEqual(missing, [])
