"""
Tests for L{stellarflow.message}: one encoding per message, carried with it.
"""

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.message import Message, seal, sealAll

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class SealTests(SynchronousTestCase):
    def test_encodedOnce(self):
        """
        The JSON text is compact ASCII, in the fields' order, and kept with the message.
        """
        message = seal({"type": "contract_event", "id": "1-0", "data": {"memo": "caf\u00e9"}})
        self.assertIsInstance(message, Message)
        self.assertEqual(message.json, b'{"type":"contract_event","id":"1-0","data":{"memo":"caf\\u00e9"}}')
        self.assertIsNone(message.encodeError)
        self.assertEqual(message, {"type": "contract_event", "id": "1-0", "data": {"memo": "caf\u00e9"}})
        self.assertEqual(message.id, "1-0")

    def test_sealedUnchanged(self):
        message = seal({"id": "1-0"})
        self.assertIs(seal(message), message)
        self.assertEqual([m.json for m in sealAll([message, {"id": "2-0"}])], [b'{"id":"1-0"}', b'{"id":"2-0"}'])

    def test_notEncodable(self):
        """
        NaN and objects JSON cannot hold leave C{json} None with the reason; nothing raises.
        """
        for fields, reason in (
            ({"id": "1-0", "amount": float("nan")}, "Out of range float values are not JSON compliant"),
            ({"id": "1-0", "data": object()}, "is not JSON serializable"),
        ):
            message = seal(fields)
            self.assertIsNone(message.json)
            self.assertIn(reason, message.encodeError)
            self.assertEqual(message.id, "1-0")

    def test_notAMapping(self):
        message = seal(["not", "a", "message"])
        self.assertIsNone(message.json)
        self.assertEqual(message.encodeError, "message is not a mapping: list")
        self.assertEqual(message["invalid_message"], "['not', 'a', 'message']")
        self.assertIsNone(message.id)

    def test_idOnlyWhenAString(self):
        self.assertIsNone(seal({"id": 5}).id)
        self.assertIsNone(seal({}).id)

    @given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
    def test_roundTrip(self, fields):
        message = seal(fields)
        self.assertEqual(json.loads(message.json), fields)
        message.json.decode("ascii")  # pure ASCII
