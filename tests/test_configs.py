"""
Every ready config in config/ validates against the real components.
"""

import glob
import os

from twisted.trial.unittest import SynchronousTestCase

from stellarflow.config import load
from tests.helpers import REPO

ENV = {"PGPASSWORD": "secret", "START": "61000000", "END": "61001000"}


class ConfigDirTests(SynchronousTestCase):
    def test_allValidate(self):
        files = sorted(glob.glob(os.path.join(REPO, "config", "*.yaml")))
        self.assertGreaterEqual(len(files), 3)
        for path in files:
            config = load(path, environ=ENV)
            self.assertTrue(config.pipelines, path)

    def test_defaultIsWebSocketOnlyOnTestnet(self):
        [p] = load(os.path.join(REPO, "config", "websocket.yaml"), environ={}).pipelines
        self.assertEqual([c.type for c in p.consumers], ["SaveToWebSocket"])
        self.assertEqual(p.source.config["rpc_url"], "https://soroban-testnet.stellar.org")
        self.assertEqual(p.source.config["network"], "testnet")

    def test_defaultServesPaymentsTradesAndContractEvents(self):
        """
        The default config follows whole ledgers, so the guide's three types all match.
        """
        [p] = load(os.path.join(REPO, "config", "websocket.yaml"), environ={}).pipelines
        self.assertEqual(p.source.config["rpc_method"], "getLedgers")
        [processor] = p.processors
        self.assertEqual(processor.type, "GetLedgersRPC")
        self.assertEqual(sorted(processor.config["emit"]), ["contract_event", "payment", "trade"])

    def test_pipelineNeedsPassword(self):
        from stellarflow.schema import ConfigError

        with self.assertRaises(ConfigError) as e:
            load(os.path.join(REPO, "config", "pipeline.yaml"), environ={})
        self.assertIn("environment variable PGPASSWORD is not set", str(e.exception))

    def test_backfillHasEnd(self):
        [p] = load(os.path.join(REPO, "config", "backfill.yaml"), environ=ENV).pipelines
        self.assertEqual((p.source.config["start_ledger"], p.source.config["end_ledger"]), (61000000, 61001000))
        self.assertEqual(p.source.config["poll_interval"], 0)
