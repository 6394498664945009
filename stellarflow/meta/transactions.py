"""
The transactions of a C{LedgerCloseMeta}, in the order they were applied.

A ledger lists its envelopes in the transaction set (``txSet``: a plain C{TransactionSet} in
meta v0, a C{GeneralizedTransactionSet} in v1 and v2, whose phases hold classic components and,
since protocol 23, parallel Soroban stages of clusters) and its results and meta in
``txProcessing``, one per transaction I{in apply order}, which is not the set's order.  The two
meet by hash: a result carries its transaction's hash, and an envelope's hash is
C{sha256(network id || envelope type || transaction)}, which is why the network passphrase is
needed.  A fee bump is hashed as itself (the result carries the outer hash, as getEvents' and
Horizon's ``transaction_hash`` do) and stands for its inner transaction: its operations, its
source account and its memo.

L{ledgerTransactions} yields one L{LedgerTransaction} per result, numbered from 1 in apply order
(the transaction order of a TOID, and getEvents' ``transactionIndex``).  A transaction is
I{successful} when its result code is ``txSUCCESS`` or ``txFEE_BUMP_INNER_SUCCESS``: a failed
transaction's operation results may still say SUCCESS (the operations that ran before the one
that failed), and nothing they say happened.
"""

import hashlib
import struct
from datetime import datetime, timezone

import attr
from stellar_sdk.xdr import CryptoKeyType, EnvelopeType, MuxedAccount, TransactionSet

_TX = struct.pack(">i", EnvelopeType.ENVELOPE_TYPE_TX.value)
_FEE_BUMP = struct.pack(">i", EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP.value)
# A TransactionV0 is hashed as the Transaction it converts to: the same bytes behind a muxed
# account's KEY_TYPE_ED25519 tag (its optional timeBounds flag reads as PRECOND_NONE/TIME).
_V0_AS_TX = _TX + b"\x00\x00\x00\x00"
_SUCCESS_CODES = frozenset((0, 1))  # txSUCCESS, txFEE_BUMP_INNER_SUCCESS


class LedgerMismatch(ValueError):
    """
    A ledger's results and envelopes do not match (a result without its envelope): a corrupt
    ledger or, far more likely, the wrong network passphrase.
    """


@attr.s(slots=True, frozen=True)
class LedgerTransaction:
    """
    One applied transaction of a ledger.

    @ivar index: its apply order, from 1.
    @ivar hash: the hash its result carries (a fee bump's outer hash), lowercase hex.
    @ivar successful: whether it succeeded (see the module docstring).
    @ivar source: the C{xdr.MuxedAccount} of its source (a fee bump's inner transaction's); a
        C{TransactionV0}'s raw key becomes an ed25519 C{MuxedAccount}.
    @ivar operations: its C{xdr.Operation}s (a fee bump's inner ones).
    @ivar results: the C{xdr.OperationResult} of each operation, or C{None} when the result has
        none (transactions rejected before their operations ran).
    @ivar memo: its C{xdr.Memo}.
    @ivar meta: its C{xdr.TransactionMeta}.
    """

    index = attr.ib()
    hash = attr.ib()
    successful = attr.ib()
    source = attr.ib()
    operations = attr.ib()
    results = attr.ib()
    memo = attr.ib()
    meta = attr.ib()


def ledgerParts(lcm):
    """
    C{(header, tx_set, tx_processing)} of a C{LedgerCloseMeta} v0, v1 or v2: the
    C{LedgerHeaderHistoryEntry}, the transaction set and the per-transaction results and meta.
    """
    body = (lcm.v0, lcm.v1, lcm.v2)[lcm.v] if lcm.v <= 2 else None
    if body is None:
        raise ValueError("unsupported LedgerCloseMeta version {}".format(lcm.v))
    return body.ledger_header, body.tx_set, body.tx_processing


def ledgerSequence(lcm):
    """
    The sequence number of the ledger C{lcm} closed.
    """
    return ledgerParts(lcm)[0].header.ledger_seq.uint32


def closeTime(header):
    """
    The close time of a C{LedgerHeaderHistoryEntry} in unix seconds.
    """
    return header.header.scp_value.close_time.time_point.uint64


def rfc3339(seconds):
    """
    Unix C{seconds} as getEvents writes ``ledgerClosedAt``: RFC 3339 in UTC, ``...Z``.
    """
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelopes(txSet):
    """
    Every C{TransactionEnvelope} of a transaction set (plain or generalized), in set order.
    """
    if isinstance(txSet, TransactionSet):  # LedgerCloseMeta v0
        return list(txSet.txs)
    if txSet.v != 1:
        raise ValueError("unsupported GeneralizedTransactionSet version {}".format(txSet.v))
    found = []
    for phase in txSet.v1_tx_set.phases:
        if phase.v == 0:
            for component in phase.v0_components:
                found.extend(component.txs_maybe_discounted_fee.txs)
        elif phase.v == 1:
            for stage in phase.parallel_txs_component.execution_stages:
                for cluster in stage.parallel_tx_execution_stage:
                    found.extend(cluster.dependent_tx_cluster)
        else:
            raise ValueError("unsupported TransactionPhase version {}".format(phase.v))
    return found


def envelopeHash(envelope, networkId):
    """
    The hash of a C{TransactionEnvelope} on the network with id C{networkId} (32 bytes).
    """
    kind = envelope.type.value
    if kind == 2:
        payload = _TX + envelope.v1.tx.to_xdr_bytes()
    elif kind == 5:
        payload = _FEE_BUMP + envelope.fee_bump.tx.to_xdr_bytes()
    elif kind == 0:
        payload = _V0_AS_TX + envelope.v0.tx.to_xdr_bytes()
    else:
        raise ValueError("unsupported envelope type {}".format(kind))
    return hashlib.sha256(networkId + payload).digest()


def networkId(passphrase):
    """
    The network id of a passphrase: C{sha256(passphrase)}.
    """
    return hashlib.sha256(passphrase.encode("utf-8")).digest()


def _inner(envelope):
    """
    C{(source MuxedAccount, operations, memo)} of the transaction an envelope applies.
    """
    kind = envelope.type.value
    if kind == 2:
        tx = envelope.v1.tx
        return tx.source_account, tx.operations, tx.memo
    if kind == 5:
        tx = envelope.fee_bump.tx.inner_tx.v1.tx
        return tx.source_account, tx.operations, tx.memo
    tx = envelope.v0.tx
    return _ed25519Muxed(tx.source_account_ed25519), tx.operations, tx.memo


def _ed25519Muxed(key):
    return MuxedAccount(CryptoKeyType.KEY_TYPE_ED25519, ed25519=key)


def _operationResults(result):
    """
    C{(successful, operation results or None)} of a C{TransactionResult}.
    """
    outcome = result.result
    code = outcome.code.value
    if code in (1, -13):  # txFEE_BUMP_INNER_SUCCESS, txFEE_BUMP_INNER_FAILED
        return code in _SUCCESS_CODES, outcome.inner_result_pair.result.result.results
    return code in _SUCCESS_CODES, outcome.results


def ledgerTransactions(lcm, passphrase):
    """
    The L{LedgerTransaction}s of a C{LedgerCloseMeta}, in apply order.

    @param passphrase: the network passphrase, to hash envelopes with.
    @raise LedgerMismatch: a result has no envelope with its hash in the transaction set.
    """
    header, txSet, processing = ledgerParts(lcm)
    if not processing:
        return []
    nid = networkId(passphrase)
    byHash = {envelopeHash(e, nid): e for e in envelopes(txSet)}
    transactions = []
    for index, item in enumerate(processing, 1):
        pair = item.result
        key = pair.transaction_hash.hash
        envelope = byHash.get(key)
        if envelope is None:
            raise LedgerMismatch(
                "ledger {}: transaction {} (apply order {}) has no envelope in the transaction set hashed "
                "with network passphrase {!r}; is it the ledger's network?".format(
                    header.header.ledger_seq.uint32, key.hex(), index, passphrase))
        source, operations, memo = _inner(envelope)
        successful, results = _operationResults(pair.result)
        transactions.append(LedgerTransaction(
            index=index, hash=key.hex(), successful=successful, source=source, operations=operations,
            results=results, memo=memo, meta=item.tx_apply_processing))
    return transactions


def operationMetas(meta):
    """
    The per-operation meta of a C{TransactionMeta} (v0 to v4): C{OperationMeta} or
    C{OperationMetaV2} items, one per operation (empty for a failed transaction).
    """
    v = meta.v
    if v == 0:
        return meta.operations
    return (None, meta.v1, meta.v2, meta.v3, meta.v4)[v].operations


def operationChanges(meta, index):
    """
    The C{LedgerEntryChange}s of operation C{index} (from 0), or C{[]} when the meta has none.
    """
    ops = operationMetas(meta)
    if index >= len(ops):
        return []
    return ops[index].changes.ledger_entry_changes
