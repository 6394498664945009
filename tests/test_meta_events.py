"""
Tests for L{stellarflow.meta.events}: contract event messages from ledgers equal what the
GetEventsRPC processor makes of the same events fetched with getEvents; ids and stages as
Stellar RPC numbers them; failed transactions' events kept; diagnostic events never served.
"""

from stellar_sdk import Asset, Payment, scval
from stellar_sdk import xdr as x
from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions
from stellarflow.events.network import TESTNET
from stellarflow.events.processor import GetEventsRPC
from stellarflow.meta import ledgerMessages
from stellarflow.testing import ledgerbuild as lb
from stellarflow.testing.ledgerfiles import fixtureLedgers

STAGE = x.TransactionEventStage
LEDGER = 1000
ALICE = lb.account(1)
BOB = lb.account(2)


def ledger(transactions):
    lcm = lb.ledgerCloseMeta(lb.ledgerHeader(LEDGER, 1700000000), transactions, TESTNET)
    return x.LedgerCloseMeta.from_xdr_bytes(lcm.to_xdr_bytes())


def paymentTx(source, events, successful=True, opEvents=()):
    envelope = lb.envelope(source, [Payment(BOB, Asset.native(), "1")])
    result = lb.transactionResult([lb.paymentSuccess()], successful=successful)
    return lb.BuiltTransaction(envelope, result, lb.metaV4([([], list(opEvents))] if successful else [], events))


class GetEventsEquivalenceTests(SynchronousTestCase):
    def test_protocol25Ledger(self):
        """
        Testnet ledger 1283415's two events, as a v23+ RPC serves them with getEvents (written
        here from the RPC's rules: the fee event before all transactions at transaction 0, the
        transfer at transaction 1, operation 0), decode to exactly the messages read from the
        ledger.
        """
        (lcm,) = fixtureLedgers("pysdk-getlatestledger-testnet-1283415-lcm-v2.json")
        txHash = "eeee8c3d932cbc6007c14b75998c59599ea29f265a96e8a889d27c0d459fd183"
        common = {"type": "contract", "ledger": 1283415, "ledgerClosedAt": "2026-03-02T01:57:09Z",
                  "contractId": "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC", "operationIndex": 0,
                  "txHash": txHash, "inSuccessfulContractCall": True}
        served = [
            dict(common, id="0005512225452195840-0000000000", transactionIndex=0,
                 topic=["AAAADwAAAANmZWUA", "AAAAEgAAAAAAAAAAfcdRcnU3D9ZrIUlKL/flMhQOTfqKAkTQ8+hgiiP2Zf0="],
                 value="AAAACgAAAAAAAAAAAAAAAAAAAGQ="),
            dict(common, id="0005512225452199936-0000000000", transactionIndex=1,
                 topic=["AAAADwAAAAh0cmFuc2Zlcg==", "AAAAEgAAAAAAAAAAEH3Rayw4M0iCLoEe96rPFNGYim8AVHJU0z4ebYZW4Jw=",
                        "AAAAEgAAAAAAAAAA4M0f6nzhUpuRrHCEr3SkZrRc/1ua+a0/cqknpG4rTQk=", "AAAADgAAAAZuYXRpdmUAAA=="],
                 value="AAAACgAAAAAAAAAAAAAAF0h26AA="),
        ]
        self.assertEqual(ledgerMessages(lcm, TESTNET, emit=("contract_event",)), GetEventsRPC(TESTNET).process(served))

    def test_messageFields(self):
        """
        Every field of a contract event message read from a ledger.
        """
        event = lb.sacEvent("transfer", Asset.native(), TESTNET, 10**7, frm=ALICE, to=BOB)
        (m,) = ledgerMessages(ledger([paymentTx(ALICE, [], opEvents=[event])]), TESTNET, emit=("contract_event",))
        self.assertEqual(m, {
            "type": "contract_event",
            "id": positions.eventId(LEDGER, 1, 0, 0),
            "ledger": LEDGER,
            "ledger_closed_at": "2023-11-14T22:13:20Z",
            "transaction_hash": m["transaction_hash"],
            "contract_id": Asset.native().contract_id(TESTNET),
            "operation_index": 0,
            "transaction_index": 1,
            "in_successful_contract_call": True,
            "event_kind": "contract",
            "topics": ["transfer", ALICE, BOB, "native"],
            "data": "10000000",
            "event_type": "transfer",
            "from": ALICE,
            "to": BOB,
            "account_ids": [ALICE, BOB],
            "asset_code": "XLM",
            "asset_issuer": None,
            "amount": "1",
            "amount_raw": "10000000",
            "asset_verified": True,
            "to_muxed_id": None,
        })


class StageTests(SynchronousTestCase):
    def test_transactionEventStages(self):
        """
        Fees before all transactions count through the ledger at transaction 0; events after a
        transaction sit after its operations (operation OP_MASK); refunds after all transactions
        count through the ledger at transaction TX_MASK.  The list is in id order.
        """
        def fee(account, amount, stage):
            return lb.feeEvent(account, amount, TESTNET, stage)

        first = paymentTx(ALICE, [fee(ALICE, 100, STAGE.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS),
                                  fee(ALICE, -7, STAGE.TRANSACTION_EVENT_STAGE_AFTER_TX),
                                  fee(ALICE, -30, STAGE.TRANSACTION_EVENT_STAGE_AFTER_ALL_TXS)])
        second = paymentTx(BOB, [fee(BOB, 200, STAGE.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS),
                                 fee(BOB, -60, STAGE.TRANSACTION_EVENT_STAGE_AFTER_ALL_TXS)])
        messages = ledgerMessages(ledger([first, second]), TESTNET)
        ids = positions.eventId
        self.assertEqual([(m["type"], m["id"], m.get("amount"), m["transaction_index"], m["operation_index"])
                          for m in messages], [
            ("contract_event", ids(LEDGER, 0, 0, 0), "0.00001", 0, 0),
            ("contract_event", ids(LEDGER, 0, 0, 1), "0.00002", 0, 0),
            ("payment", ids(LEDGER, 1, 0, 3 << 30), "1", 1, 0),
            ("contract_event", ids(LEDGER, 1, positions.OP_MASK, 0), "-0.0000007", 1, positions.OP_MASK),
            ("payment", ids(LEDGER, 2, 0, 3 << 30), "1", 2, 0),
            ("contract_event", ids(LEDGER, positions.TX_MASK, 0, 0), "-0.000003", positions.TX_MASK, 0),
            ("contract_event", ids(LEDGER, positions.TX_MASK, 0, 1), "-0.000006", positions.TX_MASK, 0),
        ])
        self.assertEqual([m["from"] for m in messages if m["type"] == "contract_event"],
                         [ALICE, BOB, ALICE, ALICE, BOB])

    def test_failedTransactionEvents(self):
        """
        A failed transaction still paid its fee: its events are kept, marked not successful, and
        it makes no payment.
        """
        failed = paymentTx(ALICE, [lb.feeEvent(ALICE, 100, TESTNET)], successful=False)
        messages = ledgerMessages(ledger([failed]), TESTNET)
        self.assertEqual([(m["type"], m["event_type"], m["in_successful_contract_call"]) for m in messages],
                         [("contract_event", "fee", False)])
        self.assertEqual(ledgerMessages(ledger([failed]), TESTNET, emit=("payment", "trade")), [])

    def test_sorobanMetaV3(self):
        """
        Meta v3 keeps a Soroban transaction's contract events in sorobanMeta, counted as operation
        0's; its diagnostic events are not served.
        """
        contract = "CCPKXJC62SE3XN7C5DDETNKKZLHN6NXUZRHFPGA7H47RIKAJYHKH2PYU"
        events = [lb.contractEvent(contract, [scval.to_symbol("hello")], scval.to_uint32(1)),
                  lb.contractEvent(contract, [scval.to_symbol("again")], scval.to_uint32(2))]
        op = x.Operation(None, x.OperationBody(x.OperationType.INVOKE_HOST_FUNCTION, invoke_host_function_op=x.InvokeHostFunctionOp(
            x.HostFunction(x.HostFunctionType.HOST_FUNCTION_TYPE_UPLOAD_CONTRACT_WASM, wasm=b"\x00"), [])))
        meta = lb.metaV3([[]], sorobanEvents=events)
        diagnostic = x.DiagnosticEvent(True, lb.contractEvent(contract, [scval.to_symbol("fn_call")], scval.to_void(),
                                                              kind=x.ContractEventType.DIAGNOSTIC))
        meta.v3.soroban_meta.diagnostic_events = [diagnostic]
        built = lb.BuiltTransaction(lb.envelope(ALICE, [op], soroban=True),
                                    lb.transactionResult([lb.invokeHostFunctionSuccess()]), meta)
        messages = ledgerMessages(ledger([built]), TESTNET)
        self.assertEqual([(m["id"], m["topics"], m["data"], m["event_kind"]) for m in messages], [
            (positions.eventId(LEDGER, 1, 0, 0), ["hello"], 1, "contract"),
            (positions.eventId(LEDGER, 1, 0, 1), ["again"], 2, "contract"),
        ])

    def test_classicMetaV3HasNoEvents(self):
        """
        Before CAP-67 (meta v3), classic operations have no events.
        """
        envelope = lb.envelope(ALICE, [Payment(BOB, Asset.native(), "1")])
        built = lb.BuiltTransaction(envelope, lb.transactionResult([lb.paymentSuccess()]), lb.metaV3([[]]))
        self.assertEqual(ledgerMessages(ledger([built]), TESTNET, emit=("contract_event",)), [])
