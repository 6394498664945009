"""
Tests for L{stellarflow.websocket.register}: a client's message parsed on its own, a pure
function from bytes to a registration or an error.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from stellarflow.positions import isPosition
from stellarflow.websocket import messages
from stellarflow.websocket.filters import Filters, parseFilters
from stellarflow.websocket.register import RegisterError, Registration, parseRegister
from tests.wshelpers import G1, M1, eventId

#: Every code an invalid message may get.
CODES = {
    messages.BINARY_NOT_SUPPORTED, messages.INVALID_JSON, messages.INVALID_MESSAGE,
    messages.INVALID_FIELD_TYPE, messages.UNKNOWN_MESSAGE_TYPE, messages.UNKNOWN_FIELD,
    messages.INVALID_RESUME_AFTER, "invalid_filters", "unknown_filter_field", "too_many_entries",
    "invalid_type", "invalid_account_id", "invalid_asset_code", "invalid_min_amount",
}


def parse(obj, isBinary=False):
    return parseRegister(json.dumps(obj).encode(), isBinary)


class RegistrationTests(SynchronousTestCase):
    def test_filtersForThePipeline(self):
        """
        The filters are those of the pipeline: C{payment} is two-party transfers only where no
        payment messages are produced.
        """
        payload = json.dumps({"type": "register", "filters": {"types": ["payment"]}}).encode()
        self.assertTrue(parseRegister(payload, False).filters.paymentTransfers)
        self.assertTrue(parseRegister(payload, False, frozenset(["contract_event"])).filters.paymentTransfers)
        ledgers = parseRegister(payload, False, frozenset(["payment", "trade", "contract_event"]))
        self.assertFalse(ledgers.filters.paymentTransfers)
        self.assertEqual(ledgers.filters.types, frozenset(["payment"]))

    def test_filtersAndResumeAfter(self):
        result = parse({"type": "register", "filters": {"account_ids": [M1], "min_amount": "1e2"},
                        "resume_after": eventId(7)})
        self.assertEqual(
            result, Registration(parseFilters({"account_ids": [G1], "min_amount": "100"}), eventId(7), True)
        )

    def test_noFilters(self):
        """
        C{filters} missing or null, C{resume_after} missing or null: no filtering, no resume.
        """
        for obj in ({"type": "register"}, {"type": "register", "filters": None, "resume_after": None}):
            self.assertEqual(parse(obj), Registration(Filters(), None))

    def test_pure(self):
        """
        The same bytes give equal results.
        """
        payload = b'{"type": "register", "filters": {"types": ["mint"]}}'
        self.assertEqual(parseRegister(payload, False), parseRegister(payload, False))


class RegisterErrorTests(SynchronousTestCase):
    def assertError(self, result, code, field=None):
        self.assertIsInstance(result, RegisterError)
        self.assertEqual((result.code, result.field), (code, field), result.message)
        return result

    def test_binary(self):
        self.assertError(parseRegister(b'{"type": "register"}', True), "binary_not_supported")

    def test_notJSON(self):
        for payload in (b"not json", b"\xff\xfe", b"[" * 100000 + b"]" * 100000):
            error = self.assertError(parseRegister(payload, False), "invalid_json")
            self.assertIn("not valid JSON", error.message)

    def test_notAnObject(self):
        self.assertError(parse(["register"]), "invalid_message")
        self.assertError(parse({"filters": {}}), "invalid_message", "type")

    def test_type(self):
        error = self.assertError(parse({"type": 7}), "invalid_field_type", "type")
        self.assertIn("number", error.message)
        error = self.assertError(parse({"type": "subscribe"}), "unknown_message_type", "type")
        self.assertIn("'subscribe'", error.message)

    def test_unknownField(self):
        error = self.assertError(parse({"type": "register", "resume_from": "1", "x": 2}), "unknown_field", "resume_from")
        self.assertIn("'resume_from', 'x'", error.message)

    def test_filterErrorsNamedWithPath(self):
        self.assertError(parse({"type": "register", "filters": []}), "invalid_filters")
        self.assertError(parse({"type": "register", "filters": {"account_ids": ["GABC"]}}),
                         "invalid_account_id", "filters.account_ids")

    def test_resumeAfter(self):
        for value in (5, "5", "latest", "0000000000000000001-00000000x0", {"id": 1}, True):
            error = self.assertError(parse({"type": "register", "resume_after": value}),
                                     "invalid_resume_after", "resume_after")
            self.assertIn("resume_after", error.message)

    def test_filtersCheckedBeforeResumeAfter(self):
        self.assertError(parse({"type": "register", "filters": {"types": 1}, "resume_after": "x"}),
                         "invalid_field_type", "filters.types")


#: JSON values of any shape, small.
jsonValues = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

#: Register messages, mostly well-formed, with any values in their fields.
registerMessages = st.fixed_dictionaries(
    {"type": st.sampled_from(["register", "register", "Register", 7])},
    optional={
        "filters": st.one_of(
            jsonValues,
            st.dictionaries(
                st.sampled_from(["types", "account_ids", "asset_codes", "min_amount", "other", "accountIds"]),
                st.one_of(
                    st.none(), st.text(max_size=8), st.integers(), st.floats(),
                    st.lists(st.one_of(st.text(max_size=60), st.sampled_from([G1, M1, "USDC", "XLM", "native"])),
                             max_size=3),
                ),
            ),
        ),
        "resume_after": st.one_of(
            jsonValues, st.builds(eventId, st.integers(0, 10**19 - 1)),
            st.from_regex(r"[0-9]{19}-[0-9]{10}", fullmatch=True),
        ),
        "extra": jsonValues,
    },
)


class PropertyTests(SynchronousTestCase):
    @settings(max_examples=500, deadline=None)
    @given(
        st.one_of(
            st.binary(max_size=200),
            jsonValues.map(lambda v: json.dumps(v).encode()),
            registerMessages.map(lambda v: json.dumps(v).encode()),
        ),
        st.booleans(),
    )
    def test_registrationOrError(self, payload, isBinary):
        """
        Every input gives either a valid registration or an error with a known code, a message
        and a field path; never an exception.
        """
        result = parseRegister(payload, isBinary)
        if isinstance(result, Registration):
            self.assertFalse(isBinary)
            self.assertIsInstance(result.filters, Filters)
            self.assertEqual(parseFilters(result.filters.toJSON()), result.filters)
            self.assertTrue(result.resumeAfter is None or isPosition(result.resumeAfter))
            message = json.loads(payload)
            self.assertEqual(message["type"], "register")
            self.assertEqual(result.resumeAfter, message.get("resume_after"))
        else:
            self.assertIsInstance(result, RegisterError)
            self.assertIn(result.code, CODES)
            self.assertIsInstance(result.message, str)
            self.assertTrue(result.message)
            self.assertTrue(result.field is None or isinstance(result.field, str))
