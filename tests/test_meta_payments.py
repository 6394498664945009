"""
Tests for L{stellarflow.meta.payments}: every payment operation, muxed accounts, amounts by
Horizon's rules, memos, and Stellar Asset Contract payments of invoke_host_function, on ledgers
built with L{stellarflow.testing.ledgerbuild}.
"""

from stellar_sdk import (
    AccountMerge,
    Asset,
    CreateAccount,
    PathPaymentStrictReceive,
    PathPaymentStrictSend,
    Payment,
    scval,
)
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions
from stellarflow.events.network import TESTNET
from stellarflow.meta import ledgerMessages, payments
from stellarflow.meta.messages import PAYMENT_INDEX
from stellarflow.testing import ledgerbuild as lb

LEDGER = 800
ALICE = lb.account(1)
BOB = lb.account(2)
ISSUER = lb.account(3)
MAKER = lb.account(4)
USD = Asset("USD", ISSUER)
EURO = Asset("EUROTOKEN12", ISSUER)
POOL = "ab" * 32
OTHER_CONTRACT = "CCPKXJC62SE3XN7C5DDETNKKZLHN6NXUZRHFPGA7H47RIKAJYHKH2PYU"


def messagesOf(transactions, emit=("payment",)):
    lcm = lb.ledgerCloseMeta(lb.ledgerHeader(LEDGER, 1700000000), transactions, TESTNET)
    return ledgerMessages(x.LedgerCloseMeta.from_xdr_bytes(lcm.to_xdr_bytes()), TESTNET, emit=emit)


def single(source, operation, result, memo=None, meta=None):
    envelope = lb.envelope(source, [operation], memo=memo)
    return lb.BuiltTransaction(envelope, lb.transactionResult([result]), meta or lb.metaV3([[]]))


def payload(message):
    """The payment fields of a message (without the envelope fields)."""
    skip = {"type", "id", "ledger", "ledger_closed_at", "transaction_hash", "transaction_index", "operation_index",
            "operation_type", "memo_type", "memo"}
    return {k: v for k, v in message.items() if k not in skip}


class ClassicPaymentTests(SynchronousTestCase):
    def test_payment(self):
        (m,) = messagesOf([single(ALICE, Payment(BOB, USD, "12.5"), lb.paymentSuccess())])
        self.assertEqual(payload(m), {"from": ALICE, "to": BOB, "asset_code": "USD", "asset_issuer": ISSUER,
                                      "amount": "12.5"})
        self.assertEqual((m["operation_type"], m["id"]), ("payment", positions.eventId(LEDGER, 1, 0, PAYMENT_INDEX)))
        self.assertNotIn("memo", m)

    def test_twelveCharacterCode(self):
        (m,) = messagesOf([single(ALICE, Payment(BOB, EURO, "0.0000003"), lb.paymentSuccess())])
        self.assertEqual((m["asset_code"], m["amount"]), ("EUROTOKEN12", "0.0000003"))

    def test_muxedSourceAndDestination(self):
        """
        A muxed source and destination are their G accounts, with the M address and id beside.
        """
        source = lb.muxedAddress(ALICE, 7)
        destination = lb.muxedAddress(BOB, 18446744073709551615)
        (m,) = messagesOf([single(source, Payment(destination, Asset.native(), "1"), lb.paymentSuccess())])
        self.assertEqual(payload(m), {
            "from": ALICE, "from_muxed": source, "from_muxed_id": "7",
            "to": BOB, "to_muxed": destination, "to_muxed_id": "18446744073709551615",
            "asset_code": "XLM", "asset_issuer": None, "amount": "1",
        })

    def test_operationSourceWins(self):
        """
        An operation's own (muxed) source is the payer, not the transaction's.
        """
        source = lb.muxedAddress(MAKER, 1)
        (m,) = messagesOf([single(ALICE, Payment(BOB, Asset.native(), "1", source=source), lb.paymentSuccess())])
        self.assertEqual((m["from"], m["from_muxed"], m["from_muxed_id"]), (MAKER, source, "1"))

    def test_createAccount(self):
        (m,) = messagesOf([single(lb.muxedAddress(ALICE, 2), CreateAccount(BOB, "10000"), lb.createAccountSuccess())])
        self.assertEqual(payload(m), {"from": ALICE, "from_muxed": lb.muxedAddress(ALICE, 2), "from_muxed_id": "2",
                                      "to": BOB, "asset_code": "XLM", "asset_issuer": None, "amount": "10000"})
        self.assertEqual(m["operation_type"], "create_account")

    def test_accountMerge(self):
        """
        The merged balance is the result's sourceAccountBalance, to a muxed destination here.
        """
        destination = lb.muxedAddress(BOB, 5)
        (m,) = messagesOf([single(ALICE, AccountMerge(destination), lb.accountMergeSuccess(99999999900))])
        self.assertEqual(payload(m), {"from": ALICE, "to": BOB, "to_muxed": destination, "to_muxed_id": "5",
                                      "asset_code": "XLM", "asset_issuer": None, "amount": "9999.99999"})

    def test_accountMergeWithoutBalance(self):
        """
        A merge result without sourceAccountBalance has no amount.  The XDR cannot encode one in a
        successful result, so the result is made in memory and read directly.
        """
        result = lb.accountMergeSuccess(None)
        fields = payments.classicPayment(payments.ACCOUNT_MERGE, AccountMerge(BOB).to_xdr_object(),
                                         lb.muxed(ALICE), result)
        self.assertEqual(fields, {"from": ALICE, "to": BOB, "asset_code": "XLM", "asset_issuer": None,
                                  "amount": None})

    def test_pathPaymentStrictSend(self):
        """
        Delivered: the result's last.amount, not the operation's destMin; sent: the op's sendAmount.
        """
        op = PathPaymentStrictSend(lb.muxedAddress(BOB, 3), USD, "10", Asset.native(), "1", [])
        atom = lb.orderBookAtom(MAKER, 5, Asset.native(), 23000000, USD, 100000000)
        (m,) = messagesOf([single(ALICE, op, lb.pathPaymentStrictSendSuccess([atom], BOB, Asset.native(), 23000000))])
        self.assertEqual(payload(m), {
            "from": ALICE, "to": BOB, "to_muxed": lb.muxedAddress(BOB, 3), "to_muxed_id": "3",
            "asset_code": "XLM", "asset_issuer": None, "amount": "2.3",
            "source_asset_code": "USD", "source_asset_issuer": ISSUER, "source_amount": "10",
        })

    def test_pathPaymentStrictReceive(self):
        """
        Delivered: the op's destAmount; sent: the amountBought of the leading atoms that took the
        send asset (here two fills of USD, then a hop), not the op's sendMax.
        """
        op = PathPaymentStrictReceive(BOB, USD, "100", Asset.native(), "5", [EURO])
        atoms = [
            lb.orderBookAtom(MAKER, 1, EURO, 10, USD, 30000000),
            lb.poolAtom(POOL, EURO, 20, USD, 40000000),
            lb.orderBookAtom(MAKER, 2, Asset.native(), 50000000, EURO, 30),
        ]
        result = lb.pathPaymentStrictReceiveSuccess(atoms, BOB, Asset.native(), 50000000)
        (m,) = messagesOf([single(ALICE, op, result)])
        self.assertEqual((m["amount"], m["asset_code"], m["source_amount"], m["source_asset_code"]),
                         ("5", "XLM", "7", "USD"))

    def test_pathPaymentStrictReceiveWithoutOffers(self):
        """
        No offer crossed (same asset): the source amount is last.amount.
        """
        op = PathPaymentStrictReceive(BOB, USD, "9", USD, "2", [])
        (m,) = messagesOf([single(ALICE, op, lb.pathPaymentStrictReceiveSuccess([], BOB, USD, 20000000))])
        self.assertEqual((m["amount"], m["source_amount"]), ("2", "2"))

    def test_memos(self):
        """
        Memos: text as text (invalid UTF-8 replaced), id as decimal text, hash and return as base64.
        """
        memos = [
            (lb.memoOf("text", "café ☕"), ("text", "café ☕")),
            (lb.memoOf("text", b"\xff\xfeok"), ("text", "\ufffd\ufffdok")),
            (lb.memoOf("id", 18446744073709551615), ("id", "18446744073709551615")),
            (lb.memoOf("hash", bytes(range(32))), ("hash", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")),
            (lb.memoOf("return", b"\xff" * 32), ("return", "//////////////////////////////////////////8=")),
            (None, None),
        ]
        built = [single(lb.account(10 + i), Payment(BOB, Asset.native(), "1"), lb.paymentSuccess(), memo=memo)
                 for i, (memo, _) in enumerate(memos)]
        messages = messagesOf(built)
        self.assertEqual([(m.get("memo_type"), m.get("memo")) if "memo" in m else None for m in messages],
                         [expected for _, expected in memos])
        self.assertEqual(list(messages[0])[8:10], ["memo_type", "memo"])


def invoke(events, meta=4):
    """A successful invoke_host_function transaction whose operation emitted C{events}."""
    op = x.Operation(None, x.OperationBody(x.OperationType.INVOKE_HOST_FUNCTION, invoke_host_function_op=x.InvokeHostFunctionOp(
        x.HostFunction(x.HostFunctionType.HOST_FUNCTION_TYPE_UPLOAD_CONTRACT_WASM, wasm=b"\x00"), [])))
    envelope = lb.envelope(ALICE, [op], soroban=True)
    built = lb.metaV4([([], events)]) if meta == 4 else lb.metaV3([[]], sorobanEvents=events)
    return lb.BuiltTransaction(envelope, lb.transactionResult([lb.invokeHostFunctionSuccess()]), built)


class SacPaymentTests(SynchronousTestCase):
    """
    invoke_host_function payments: transfer, mint, burn and clawback events of an authentic
    Stellar Asset Contract, one payment each.
    """

    def test_sacEvents(self):
        contract = lb.account(20)
        events = [
            lb.sacEvent("transfer", USD, TESTNET, 15, frm=ALICE, to=BOB, toMuxedId=77),
            lb.contractEvent(USD.contract_id(TESTNET),
                             [scval.to_symbol("approve"), scval.to_address(ALICE), scval.to_address(BOB),
                              scval.to_string("USD:" + ISSUER)],
                             scval.to_vec([scval.to_int128(1), scval.to_uint32(9)])),
            lb.sacEvent("mint", Asset.native(), TESTNET, 20000000, to=contract),
            lb.sacEvent("transfer", USD, TESTNET, 5, frm=ALICE, to=BOB, contractId=OTHER_CONTRACT),
            lb.sacEvent("burn", USD, TESTNET, 3, frm=BOB),
            lb.sacEvent("clawback", USD, TESTNET, 4, frm=ALICE),
            lb.contractEvent(OTHER_CONTRACT, [scval.to_symbol("transfer"), scval.to_address(ALICE),
                                              scval.to_address(BOB)], scval.to_int128(6)),
        ]
        messages = messagesOf([invoke(events)])
        self.assertEqual([(int(m["id"][20:]) - PAYMENT_INDEX, payload(m)) for m in messages], [
            (0, {"from": ALICE, "to": BOB, "to_muxed": lb.muxedAddress(BOB, 77), "to_muxed_id": "77",
                 "asset_code": "USD", "asset_issuer": ISSUER, "amount": "0.0000015",
                 "contract_id": USD.contract_id(TESTNET), "event_type": "transfer"}),
            (2, {"from": None, "to": contract, "asset_code": "XLM", "asset_issuer": None, "amount": "2",
                 "contract_id": Asset.native().contract_id(TESTNET), "event_type": "mint"}),
            (4, {"from": BOB, "to": None, "asset_code": "USD", "asset_issuer": ISSUER, "amount": "0.0000003",
                 "contract_id": USD.contract_id(TESTNET), "event_type": "burn"}),
            (5, {"from": ALICE, "to": None, "asset_code": "USD", "asset_issuer": ISSUER, "amount": "0.0000004",
                 "contract_id": USD.contract_id(TESTNET), "event_type": "clawback"}),
        ])
        self.assertEqual({m["operation_type"] for m in messages}, {"invoke_host_function"})

    def test_paymentPointsAtItsEvent(self):
        """
        A SAC payment's id is its event's id moved into the payment range: both sort in
        operation order, events first.
        """
        events = [lb.sacEvent("mint", USD, TESTNET, 1, to=BOB), lb.sacEvent("transfer", USD, TESTNET, 2, frm=BOB, to=ALICE)]
        messages = messagesOf([invoke(events)], emit=("payment", "contract_event"))
        self.assertEqual([(m["type"], m["id"][20:]) for m in messages], [
            ("contract_event", "0000000000"), ("contract_event", "0000000001"),
            ("payment", str(PAYMENT_INDEX)), ("payment", str(PAYMENT_INDEX + 1)),
        ])

    def test_protocol20Events(self):
        """
        Meta v3 keeps a Soroban transaction's events in sorobanMeta; before protocol 23 a mint
        named its admin first.
        """
        mint = lb.contractEvent(USD.contract_id(TESTNET), [
            scval.to_symbol("mint"), scval.to_address(ISSUER), scval.to_address(BOB),
            scval.to_string("USD:" + ISSUER)], scval.to_int128(10**7))
        (m,) = messagesOf([invoke([mint], meta=3)])
        self.assertEqual((m["event_type"], m["from"], m["to"], m["amount"]), ("mint", None, BOB, "1"))

    def test_failedInvoke(self):
        """
        A failed transaction's SAC events are no payments.
        """
        built = invoke([lb.sacEvent("transfer", USD, TESTNET, 15, frm=ALICE, to=BOB)])
        failed = lb.BuiltTransaction(built.envelope, lb.transactionResult([lb.invokeHostFunctionSuccess()],
                                                                          successful=False), built.meta)
        self.assertEqual(messagesOf([failed]), [])
