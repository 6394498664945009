"""
Build C{LedgerCloseMeta}s with stellar-sdk's XDR: ledgers assembled from real transactions, and
synthetic transactions for what recorded ledgers lack (fee bumps, muxed accounts, old claim
atoms, passive offers in the manage-sell result arm, zero-amount atoms, every memo kind, failed
transactions whose operations say SUCCESS).

A built ledger is what stellar-core would write, as far as readers of ledgers can tell: a
C{LedgerCloseMeta} (v2 by default; v1 and v0 for older ledgers) whose transaction set lists the
envelopes in hash order (classic ones in a phase-0 component, Soroban ones in a parallel phase-1
stage, one cluster each) while its ``txProcessing`` keeps the order given, the apply order, so
the two differ as in real ledgers.  Transaction hashes are computed by stellar-sdk's envelope
classes, not by the code under test.  Signatures, fee and header fields other than the
sequence, close time, protocol and previous hash are placeholders (zeros); the header's own
hash is its real hash.

L{getLedgersRecord} turns a built ledger into a getLedgers ``ledgers[]`` item, for the test RPC
server.

Amounts are integers in stroops; assets are C{stellar_sdk.Asset}s; accounts are strkeys
(``G...`` or ``M...``).
"""

import base64
import hashlib

import attr
from stellar_sdk import Asset, FeeBumpTransactionEnvelope, Keypair, MuxedAccount, StrKey, TransactionEnvelope, scval
from stellar_sdk import xdr as x

ZERO_HASH = x.Hash(b"\x00" * 32)
_EMPTY_CHANGES = x.LedgerEntryChanges([])


@attr.s(frozen=True)
class BuiltTransaction:
    """
    One transaction of a ledger to build: its C{xdr.TransactionEnvelope}, C{xdr.TransactionResult}
    and C{xdr.TransactionMeta}.
    """

    envelope = attr.ib()
    result = attr.ib()
    meta = attr.ib()


# -- hashes ----------------------------------------------------------------------------------


def transactionHash(envelope, passphrase):
    """
    The hash (32 bytes) of an C{xdr.TransactionEnvelope}, by stellar-sdk.
    """
    if envelope.type == x.EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP:
        return FeeBumpTransactionEnvelope.from_xdr_object(envelope, passphrase).hash()
    # A V0 envelope is hashed as the Transaction it converts to, as stellar-core does.
    return TransactionEnvelope.from_xdr_object(envelope, passphrase).hash()


def innerHash(envelope, passphrase):
    """
    The hash of a fee bump's inner transaction.
    """
    inner = x.TransactionEnvelope(x.EnvelopeType.ENVELOPE_TYPE_TX, v1=envelope.fee_bump.tx.inner_tx.v1)
    return transactionHash(inner, passphrase)


# -- accounts, assets, amounts ---------------------------------------------------------------


def account(n):
    """
    A deterministic ``G...`` account for tests: the key of the seed of 32 bytes C{n}.
    """
    return Keypair.from_raw_ed25519_seed(bytes([n % 256]) * 32).public_key


def muxedAddress(address, muxedId):
    """
    The ``M...`` address of the ``G...`` C{address} with the 64-bit C{muxedId}.
    """
    return MuxedAccount(address, muxedId).account_muxed


def muxed(address):
    """
    The C{xdr.MuxedAccount} of a ``G...`` or ``M...`` strkey.
    """
    return MuxedAccount.from_account(address).to_xdr_object()


def accountId(address):
    """
    The C{xdr.AccountID} of a ``G...`` strkey.
    """
    return Keypair.from_public_key(address).xdr_account_id()


def amountText(stroops):
    """
    C{stroops} as the decimal text stellar-sdk's operations take (``"0.0000003"``).
    """
    return "{}.{:07d}".format(*divmod(stroops, 10**7))


def poolId(hexId):
    return x.PoolID(x.Hash(bytes.fromhex(hexId)))


# -- envelopes -------------------------------------------------------------------------------


def memoOf(kind=None, value=None):
    """
    An C{xdr.Memo}: C{kind} ``text`` (str or bytes), ``id`` (int), ``hash``/``return`` (32 bytes),
    or C{None} for no memo.
    """
    if kind is None:
        return x.Memo(x.MemoType.MEMO_NONE)
    if kind == "text":
        return x.Memo(x.MemoType.MEMO_TEXT, text=value.encode("utf-8") if isinstance(value, str) else value)
    if kind == "id":
        return x.Memo(x.MemoType.MEMO_ID, id=x.Uint64(value))
    if kind == "hash":
        return x.Memo(x.MemoType.MEMO_HASH, hash=x.Hash(value))
    if kind == "return":
        return x.Memo(x.MemoType.MEMO_RETURN, ret_hash=x.Hash(value))
    raise ValueError("unknown memo kind {!r}".format(kind))


def _operations(operations):
    return [op if isinstance(op, x.Operation) else op.to_xdr_object() for op in operations]


def _sorobanData():
    footprint = x.LedgerFootprint([], [])
    return x.SorobanTransactionData(x.SorobanTransactionDataExt(0),
                                    x.SorobanResources(footprint, x.Uint32(0), x.Uint32(0), x.Uint32(0)), x.Int64(0))


def envelope(source, operations, memo=None, sequence=1, fee=100, soroban=False):
    """
    An unsigned C{xdr.TransactionEnvelope} (``ENVELOPE_TYPE_TX``).

    @param source: the source account, ``G...`` or ``M...``.
    @param operations: C{stellar_sdk} operations or C{xdr.Operation}s.
    @param memo: an C{xdr.Memo} (L{memoOf}) or C{None}.
    @param soroban: give it (empty) Soroban transaction data, as an invoke_host_function has.
    """
    tx = x.Transaction(
        source_account=muxed(source),
        fee=x.Uint32(fee * max(1, len(operations))),
        seq_num=x.SequenceNumber(x.Int64(sequence)),
        cond=x.Preconditions(x.PreconditionType.PRECOND_NONE),
        memo=memo if memo is not None else memoOf(),
        operations=_operations(operations),
        ext=x.TransactionExt(1, soroban_data=_sorobanData()) if soroban else x.TransactionExt(0),
    )
    return x.TransactionEnvelope(x.EnvelopeType.ENVELOPE_TYPE_TX, v1=x.TransactionV1Envelope(tx, []))


def envelopeV0(source, operations, memo=None, sequence=1, fee=100):
    """
    An unsigned pre-protocol-13 C{xdr.TransactionEnvelope} (``ENVELOPE_TYPE_TX_V0``, raw key source).
    """
    tx = x.TransactionV0(
        source_account_ed25519=x.Uint256(StrKey.decode_ed25519_public_key(source)),
        fee=x.Uint32(fee * max(1, len(operations))),
        seq_num=x.SequenceNumber(x.Int64(sequence)),
        time_bounds=None,
        memo=memo if memo is not None else memoOf(),
        operations=_operations(operations),
        ext=x.TransactionV0Ext(0),
    )
    return x.TransactionEnvelope(x.EnvelopeType.ENVELOPE_TYPE_TX_V0, v0=x.TransactionV0Envelope(tx, []))


def feeBump(inner, feeSource, fee=1000):
    """
    A fee bump of the C{ENVELOPE_TYPE_TX} envelope C{inner}, paid by C{feeSource}.
    """
    bump = x.FeeBumpTransaction(
        fee_source=muxed(feeSource),
        fee=x.Int64(fee),
        inner_tx=x.FeeBumpTransactionInnerTx(x.EnvelopeType.ENVELOPE_TYPE_TX, v1=inner.v1),
        ext=x.FeeBumpTransactionExt(0),
    )
    return x.TransactionEnvelope(x.EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP,
                                 fee_bump=x.FeeBumpTransactionEnvelope(bump, []))


# -- results ---------------------------------------------------------------------------------


def transactionResult(operationResults, successful=True, code=None, fee=100, bumped=None, passphrase=None):
    """
    An C{xdr.TransactionResult}.

    @param operationResults: the C{xdr.OperationResult} of each operation (C{None}: none, as for
        a transaction rejected before it ran).
    @param successful: ``txSUCCESS``, else C{code} or ``txFAILED``.
    @param bumped: the fee bump envelope whose inner transaction this is the result of: the
        result is then ``txFEE_BUMP_INNER_SUCCESS``/``_FAILED`` around the inner result (hashed
        with C{passphrase}).
    """
    codes = x.TransactionResultCode
    if code is None:
        code = codes.txSUCCESS if successful else codes.txFAILED
    if bumped is not None:
        inner = x.InnerTransactionResult(
            fee_charged=x.Int64(fee),
            result=x.InnerTransactionResultResult(code, results=operationResults),
            ext=x.InnerTransactionResultExt(0),
        )
        pair = x.InnerTransactionResultPair(x.Hash(innerHash(bumped, passphrase)), inner)
        outer = codes.txFEE_BUMP_INNER_SUCCESS if successful else codes.txFEE_BUMP_INNER_FAILED
        return x.TransactionResult(x.Int64(fee), x.TransactionResultResult(outer, inner_result_pair=pair),
                                   x.TransactionResultExt(0))
    return x.TransactionResult(x.Int64(fee), x.TransactionResultResult(code, results=operationResults),
                               x.TransactionResultExt(0))


def _opResult(kind, **arm):
    return x.OperationResult(x.OperationResultCode.opINNER, tr=x.OperationResultTr(kind, **arm))


def createAccountSuccess():
    return _opResult(x.OperationType.CREATE_ACCOUNT,
                     create_account_result=x.CreateAccountResult(x.CreateAccountResultCode.CREATE_ACCOUNT_SUCCESS))


def paymentSuccess():
    return _opResult(x.OperationType.PAYMENT, payment_result=x.PaymentResult(x.PaymentResultCode.PAYMENT_SUCCESS))


def paymentFailure(code=x.PaymentResultCode.PAYMENT_UNDERFUNDED):
    return _opResult(x.OperationType.PAYMENT, payment_result=x.PaymentResult(code))


def accountMergeSuccess(balance):
    """
    An account_merge result; C{balance} C{None} leaves out ``sourceAccountBalance``.
    """
    return _opResult(x.OperationType.ACCOUNT_MERGE, account_merge_result=x.AccountMergeResult(
        x.AccountMergeResultCode.ACCOUNT_MERGE_SUCCESS, None if balance is None else x.Int64(balance)))


def _last(destination, asset, amount):
    return x.SimplePaymentResult(accountId(destination), asset.to_xdr_object(), x.Int64(amount))


def pathPaymentStrictSendSuccess(atoms, destination, asset, amount):
    """
    A successful path_payment_strict_send result: C{atoms} crossed, C{amount} of C{asset}
    delivered to the ``G...`` C{destination}.
    """
    return _opResult(x.OperationType.PATH_PAYMENT_STRICT_SEND, path_payment_strict_send_result=x.PathPaymentStrictSendResult(
        x.PathPaymentStrictSendResultCode.PATH_PAYMENT_STRICT_SEND_SUCCESS,
        success=x.PathPaymentStrictSendResultSuccess(atoms, _last(destination, asset, amount))))


def pathPaymentStrictReceiveSuccess(atoms, destination, asset, amount):
    """
    A successful path_payment_strict_receive result (see L{pathPaymentStrictSendSuccess}).
    """
    return _opResult(
        x.OperationType.PATH_PAYMENT_STRICT_RECEIVE,
        path_payment_strict_receive_result=x.PathPaymentStrictReceiveResult(
            x.PathPaymentStrictReceiveResultCode.PATH_PAYMENT_STRICT_RECEIVE_SUCCESS,
            success=x.PathPaymentStrictReceiveResultSuccess(atoms, _last(destination, asset, amount))))


def offerEntry(seller, offerId, selling, buying, amount, n, d):
    """
    An C{xdr.OfferEntry}: C{seller} (``G...``) sells C{amount} of C{selling} at C{n/d} C{buying}.
    """
    return x.OfferEntry(accountId(seller), x.Int64(offerId), selling.to_xdr_object(), buying.to_xdr_object(),
                        x.Int64(amount), x.Price(x.Int32(n), x.Int32(d)), x.Uint32(0), x.OfferEntryExt(0))


def manageOfferSuccess(kind, atoms, offer=None, effect=None):
    """
    A successful manage-offer result in the arm of OperationType C{kind} (``MANAGE_SELL_OFFER``,
    ``MANAGE_BUY_OFFER`` or ``CREATE_PASSIVE_SELL_OFFER``): C{atoms} crossed and the taker's
    C{offer} (an C{xdr.OfferEntry}) left on the book (C{effect} created by default), or none.
    """
    effects = x.ManageOfferEffect
    if offer is None:
        left = x.ManageOfferSuccessResultOffer(effects.MANAGE_OFFER_DELETED)
    else:
        left = x.ManageOfferSuccessResultOffer(effect or effects.MANAGE_OFFER_CREATED, offer)
    success = x.ManageOfferSuccessResult(atoms, left)
    if kind == x.OperationType.MANAGE_BUY_OFFER:
        return _opResult(kind, manage_buy_offer_result=x.ManageBuyOfferResult(
            x.ManageBuyOfferResultCode.MANAGE_BUY_OFFER_SUCCESS, success))
    arm = x.ManageSellOfferResult(x.ManageSellOfferResultCode.MANAGE_SELL_OFFER_SUCCESS, success)
    if kind == x.OperationType.MANAGE_SELL_OFFER:
        return _opResult(kind, manage_sell_offer_result=arm)
    return _opResult(kind, create_passive_sell_offer_result=arm)


def invokeHostFunctionSuccess():
    return _opResult(x.OperationType.INVOKE_HOST_FUNCTION, invoke_host_function_result=x.InvokeHostFunctionResult(
        x.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_SUCCESS, success=ZERO_HASH))


def orderBookAtom(seller, offerId, sold, amountSold, bought, amountBought):
    """
    A ``CLAIM_ATOM_TYPE_ORDER_BOOK`` atom: C{seller}'s offer C{offerId} gave C{amountSold} of
    C{sold} for C{amountBought} of C{bought}.
    """
    return x.ClaimAtom(x.ClaimAtomType.CLAIM_ATOM_TYPE_ORDER_BOOK, order_book=x.ClaimOfferAtom(
        accountId(seller), x.Int64(offerId), sold.to_xdr_object(), x.Int64(amountSold), bought.to_xdr_object(),
        x.Int64(amountBought)))


def v0Atom(seller, offerId, sold, amountSold, bought, amountBought):
    """
    A ``CLAIM_ATOM_TYPE_V0`` atom (the seller as a raw ed25519 key).
    """
    return x.ClaimAtom(x.ClaimAtomType.CLAIM_ATOM_TYPE_V0, v0=x.ClaimOfferAtomV0(
        x.Uint256(StrKey.decode_ed25519_public_key(seller)), x.Int64(offerId), sold.to_xdr_object(),
        x.Int64(amountSold), bought.to_xdr_object(), x.Int64(amountBought)))


def poolAtom(pool, sold, amountSold, bought, amountBought):
    """
    A ``CLAIM_ATOM_TYPE_LIQUIDITY_POOL`` atom of the pool with hex id C{pool}.
    """
    return x.ClaimAtom(x.ClaimAtomType.CLAIM_ATOM_TYPE_LIQUIDITY_POOL, liquidity_pool=x.ClaimLiquidityAtom(
        poolId(pool), sold.to_xdr_object(), x.Int64(amountSold), bought.to_xdr_object(), x.Int64(amountBought)))


# -- meta ------------------------------------------------------------------------------------


def offerState(offer, ledger=1):
    """
    The ``LEDGER_ENTRY_STATE`` change of an C{xdr.OfferEntry} (its state before an operation).
    """
    entry = x.LedgerEntry(x.Uint32(ledger), x.LedgerEntryData(x.LedgerEntryType.OFFER, offer=offer),
                          x.LedgerEntryExt(0))
    return x.LedgerEntryChange(x.LedgerEntryChangeType.LEDGER_ENTRY_STATE, state=entry)


def contractEvent(contractId, topics, data, kind=x.ContractEventType.CONTRACT):
    """
    An C{xdr.ContractEvent} of the contract ``C...`` C{contractId} (C{None}: none) with C{topics}
    and C{data} (C{xdr.SCVal}s).
    """
    cid = None if contractId is None else x.ContractID(x.Hash(StrKey.decode_contract(contractId)))
    return x.ContractEvent(x.ExtensionPoint(0), cid, kind,
                           x.ContractEventBody(0, v0=x.ContractEventV0(list(topics), data)))


def _assetTopic(asset):
    return "native" if asset.is_native() else "{}:{}".format(asset.code, asset.issuer)


def sacEvent(name, asset, passphrase, amount, frm=None, to=None, toMuxedId=None, contractId=None):
    """
    A Stellar Asset Contract event as protocol 23 writes it (CAP-67): ``transfer`` (C{frm},
    C{to}), ``mint`` (C{to}), ``burn``/``clawback`` (C{frm}), the asset last; data the i128
    C{amount}, or the map ``{amount, to_muxed_id}`` with a u64 C{toMuxedId}.  C{contractId}
    defaults to the asset's real SAC on C{passphrase}.
    """
    parties = {"transfer": (frm, to), "mint": (to,), "burn": (frm,), "clawback": (frm,)}[name]
    topics = [scval.to_symbol(name)] + [scval.to_address(p) for p in parties] + [scval.to_string(_assetTopic(asset))]
    data = scval.to_int128(amount)
    if toMuxedId is not None:
        data = scval.to_map({scval.to_symbol("amount"): data, scval.to_symbol("to_muxed_id"): scval.to_uint64(toMuxedId)})
    return contractEvent(contractId or asset.contract_id(passphrase), topics, data)


def feeEvent(account, amount, passphrase, stage=x.TransactionEventStage.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS):
    """
    A native SAC ``fee`` C{xdr.TransactionEvent} (a refund when C{amount} is negative).
    """
    event = contractEvent(Asset.native().contract_id(passphrase), [scval.to_symbol("fee"), scval.to_address(account)],
                          scval.to_int128(amount))
    return x.TransactionEvent(stage, event)


def _operationMetas(operations):
    return [x.OperationMeta(x.LedgerEntryChanges(list(c))) for c in operations]


def metaV1(operations=()):
    """
    An C{xdr.TransactionMeta} v1 (protocols 10-12): one list of C{LedgerEntryChange}s per operation.
    """
    return x.TransactionMeta(1, v1=x.TransactionMetaV1(_EMPTY_CHANGES, _operationMetas(operations)))


def metaV2(operations=()):
    """
    An C{xdr.TransactionMeta} v2 (protocols 13-19), as L{metaV1}.
    """
    return x.TransactionMeta(2, v2=x.TransactionMetaV2(_EMPTY_CHANGES, _operationMetas(operations), _EMPTY_CHANGES))


def metaV3(operations=(), sorobanEvents=None):
    """
    An C{xdr.TransactionMeta} v3: C{operations} is one list of C{LedgerEntryChange}s per
    operation; C{sorobanEvents} (C{ContractEvent}s) makes it a Soroban transaction's.
    """
    soroban = None
    if sorobanEvents is not None:
        soroban = x.SorobanTransactionMeta(x.SorobanTransactionMetaExt(0), list(sorobanEvents),
                                           scval.to_void(), [])
    return x.TransactionMeta(3, v3=x.TransactionMetaV3(
        x.ExtensionPoint(0), _EMPTY_CHANGES, _operationMetas(operations), _EMPTY_CHANGES, soroban))


def metaV4(operations=(), events=()):
    """
    An C{xdr.TransactionMeta} v4: C{operations} is one C{(changes, events)} pair per operation,
    C{events} the transaction's C{TransactionEvent}s.
    """
    return x.TransactionMeta(4, v4=x.TransactionMetaV4(
        x.ExtensionPoint(0), _EMPTY_CHANGES,
        [x.OperationMetaV2(x.ExtensionPoint(0), x.LedgerEntryChanges(list(c)), list(e)) for c, e in operations],
        _EMPTY_CHANGES, None, list(events), []))


# -- ledgers ---------------------------------------------------------------------------------


def ledgerHeader(sequence, closeTime, protocol=23, previousHash=ZERO_HASH):
    """
    A C{LedgerHeaderHistoryEntry} for ledger C{sequence} closed at unix C{closeTime}.
    """
    header = x.LedgerHeader(
        ledger_version=x.Uint32(protocol),
        previous_ledger_hash=previousHash,
        scp_value=x.StellarValue(ZERO_HASH, x.TimePoint(x.Uint64(closeTime)), [],
                                 x.StellarValueExt(x.StellarValueType.STELLAR_VALUE_BASIC)),
        tx_set_result_hash=ZERO_HASH,
        bucket_list_hash=ZERO_HASH,
        ledger_seq=x.Uint32(sequence),
        total_coins=x.Int64(0),
        fee_pool=x.Int64(0),
        inflation_seq=x.Uint32(0),
        id_pool=x.Uint64(0),
        base_fee=x.Uint32(100),
        base_reserve=x.Uint32(5000000),
        max_tx_set_size=x.Uint32(1000),
        skip_list=[ZERO_HASH] * 4,
        ext=x.LedgerHeaderExt(0),
    )
    return x.LedgerHeaderHistoryEntry(x.Hash(hashlib.sha256(header.to_xdr_bytes()).digest()), header,
                                      x.LedgerHeaderHistoryEntryExt(0))


def _isSoroban(envelope):
    if envelope.type == x.EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP:
        return envelope.fee_bump.tx.inner_tx.v1.tx.ext.v == 1
    return envelope.type == x.EnvelopeType.ENVELOPE_TYPE_TX and envelope.v1.tx.ext.v == 1


def ledgerCloseMeta(header, transactions, passphrase, version=2):
    """
    A C{LedgerCloseMeta} of C{header} (a C{LedgerHeaderHistoryEntry}, L{ledgerHeader}) whose
    C{transactions} (L{BuiltTransaction}s) were applied in the order given; its transaction set
    lists them in hash order (see the module docstring).

    @param version: 2 (protocol 23 on), 1 (a generalized set, protocols 20-22) or 0 (a plain
        C{TransactionSet}, older ledgers).
    """
    hashed = [(transactionHash(t.envelope, passphrase), t) for t in transactions]
    inSetOrder = [t.envelope for _, t in sorted(hashed, key=lambda pair: pair[0])]
    previous = header.header.previous_ledger_hash
    if version == 0:
        processing = [x.TransactionResultMeta(x.TransactionResultPair(x.Hash(h), t.result), _EMPTY_CHANGES, t.meta)
                      for h, t in hashed]
        return x.LedgerCloseMeta(0, v0=x.LedgerCloseMetaV0(header, x.TransactionSet(previous, inSetOrder), processing,
                                                           [], []))
    classic = [e for e in inSetOrder if not _isSoroban(e)]
    soroban = [e for e in inSetOrder if _isSoroban(e)]
    phases = [x.TransactionPhase(0, v0_components=[x.TxSetComponent(
        x.TxSetComponentType.TXSET_COMP_TXS_MAYBE_DISCOUNTED_FEE,
        x.TxSetComponentTxsMaybeDiscountedFee(x.Int64(100), classic))] if classic else [])]
    if version == 2:
        stages = [x.ParallelTxExecutionStage([x.DependentTxCluster([e]) for e in soroban])] if soroban else []
        phases.append(x.TransactionPhase(1, parallel_txs_component=x.ParallelTxsComponent(x.Int64(100), stages)))
    else:
        phases.append(x.TransactionPhase(0, v0_components=[x.TxSetComponent(
            x.TxSetComponentType.TXSET_COMP_TXS_MAYBE_DISCOUNTED_FEE,
            x.TxSetComponentTxsMaybeDiscountedFee(x.Int64(100), soroban))] if soroban else []))
    txSet = x.GeneralizedTransactionSet(1, v1_tx_set=x.TransactionSetV1(previous, phases))
    if version == 1:
        processing = [x.TransactionResultMeta(x.TransactionResultPair(x.Hash(h), t.result), _EMPTY_CHANGES, t.meta)
                      for h, t in hashed]
        return x.LedgerCloseMeta(1, v1=x.LedgerCloseMetaV1(
            x.LedgerCloseMetaExt(0), header, txSet, processing, [], [], x.Uint64(0), [], []))
    processing = [
        x.TransactionResultMetaV1(x.ExtensionPoint(0), x.TransactionResultPair(x.Hash(h), t.result), _EMPTY_CHANGES,
                                  t.meta, _EMPTY_CHANGES)
        for h, t in hashed
    ]
    return x.LedgerCloseMeta(2, v2=x.LedgerCloseMetaV2(
        x.LedgerCloseMetaExt(0), header, txSet, processing, [], [], x.Uint64(0), []))


def assembledTransactions(records, passphrase):
    """
    L{BuiltTransaction}s from getTransactions-style records (``envelopeXdr``, ``resultXdr``,
    ``resultMetaXdr``, base64), checking each envelope's hash against the record's ``txHash``.

    @raise ValueError: a record's envelope does not hash to its ``txHash`` on C{passphrase}.
    """
    built = []
    for record in records:
        envelope = x.TransactionEnvelope.from_xdr(record["envelopeXdr"])
        if transactionHash(envelope, passphrase).hex() != record["txHash"]:
            raise ValueError("transaction {} does not hash to its txHash on {!r}".format(record["txHash"], passphrase))
        built.append(BuiltTransaction(envelope, x.TransactionResult.from_xdr(record["resultXdr"]),
                                      x.TransactionMeta.from_xdr(record["resultMetaXdr"])))
    return built


def getLedgersRecord(lcm):
    """
    The getLedgers ``ledgers[]`` item of a C{LedgerCloseMeta} (base64 XDR format).
    """
    entry = (lcm.v0, lcm.v1, lcm.v2)[lcm.v].ledger_header
    header = entry.header
    return {
        "hash": entry.hash.hash.hex(),
        "sequence": header.ledger_seq.uint32,
        "ledgerCloseTime": str(header.scp_value.close_time.time_point.uint64),
        "headerXdr": entry.to_xdr(),
        "metadataXdr": base64.b64encode(lcm.to_xdr_bytes()).decode("ascii"),
    }
