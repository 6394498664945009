"""
Synthetic classic traffic for the test server's ledgers: deterministic transactions per
C{(seed, ledger)}, built with L{stellarflow.testing.ledgerbuild}.

Each ledger holds C{count} transactions drawn from L{KINDS}: payments (native and credit),
payments between muxed accounts, account creations, path payments (strict send over an order
book offer and a liquidity pool, strict receive), sell offers crossing a maker's offer, failed
transactions (whose first operation still says SUCCESS), fee bumps of payments and an account
merge.  The messages they give are what L{stellarflow.meta.ledgerMessages} makes of them; the
tests compare what a pipeline delivered with that.
"""

import random

from stellar_sdk import (
    AccountMerge,
    Asset,
    CreateAccount,
    ManageSellOffer,
    PathPaymentStrictReceive,
    PathPaymentStrictSend,
    Payment,
)
from stellar_sdk import xdr as x

from stellarflow.testing import ledgerbuild as lb

ISSUER = lb.account(200)
USD = Asset("USD", ISSUER)
EURO = Asset("EURO", ISSUER)
XLM = Asset.native()
POOL = "4816ceca535ffef323d9e8af39b8a0b8c5227fdd5bd9d7eb414b4caeff27f644"
ACCOUNTS = [lb.account(n) for n in range(1, 41)]

#: The kinds of transactions, each a function C{(random, index) -> BuiltTransaction}.
KINDS = ("payment", "muxed_payment", "create_account", "path_send", "path_receive", "offer_cross", "failed",
         "fee_bump", "account_merge")


def _stroops(rng):
    return rng.randint(1, 10**9)


def _pair(rng):
    a, b = rng.sample(ACCOUNTS, 2)
    return a, b


def _single(source, operation, result, sequence, meta=None, memo=None):
    envelope = lb.envelope(source, [operation], sequence=sequence, memo=memo)
    return lb.BuiltTransaction(envelope, lb.transactionResult([result]), meta or lb.metaV3([[]]))


def _payment(rng, sequence):
    a, b = _pair(rng)
    asset = rng.choice((XLM, USD))
    return _single(a, Payment(b, asset, lb.amountText(_stroops(rng))), lb.paymentSuccess(), sequence,
                   memo=lb.memoOf("id", sequence) if rng.random() < 0.3 else None)


def _muxedPayment(rng, sequence):
    a, b = _pair(rng)
    op = Payment(lb.muxedAddress(b, rng.randint(1, 2**64 - 1)), XLM, lb.amountText(_stroops(rng)))
    return _single(lb.muxedAddress(a, rng.randint(1, 2**32)), op, lb.paymentSuccess(), sequence)


def _createAccount(rng, sequence):
    a = rng.choice(ACCOUNTS)
    b = lb.account(rng.randint(100, 199))
    return _single(a, CreateAccount(b, "10000"), lb.createAccountSuccess(), sequence)


def _pathSend(rng, sequence):
    a, b = _pair(rng)
    maker = rng.choice(ACCOUNTS)
    got = _stroops(rng)
    atoms = [lb.orderBookAtom(maker, rng.randint(1, 10**6), EURO, got, USD, got * 2),
             lb.poolAtom(POOL, XLM, got * 3, EURO, got)]
    op = PathPaymentStrictSend(b, USD, lb.amountText(got * 2), XLM, "0.0000001", [EURO])
    return _single(a, op, lb.pathPaymentStrictSendSuccess(atoms, b, XLM, got * 3), sequence)


def _pathReceive(rng, sequence):
    a, b = _pair(rng)
    maker = rng.choice(ACCOUNTS)
    amount = _stroops(rng)
    atoms = [lb.orderBookAtom(maker, rng.randint(1, 10**6), USD, amount, XLM, amount * 5)]
    op = PathPaymentStrictReceive(b, XLM, lb.amountText(amount * 6), USD, lb.amountText(amount), [])
    return _single(a, op, lb.pathPaymentStrictReceiveSuccess(atoms, b, USD, amount), sequence)


def _offerCross(rng, sequence):
    taker, maker = _pair(rng)
    offerId = rng.randint(1, 10**6)
    amount = _stroops(rng)
    atom = lb.orderBookAtom(maker, offerId, USD, amount, XLM, amount * 5 // 2)
    pre = lb.offerState(lb.offerEntry(maker, offerId, USD, XLM, 10**10, 5, 2))
    result = lb.manageOfferSuccess(x.OperationType.MANAGE_SELL_OFFER, [atom])
    return _single(taker, ManageSellOffer(XLM, USD, lb.amountText(amount * 5 // 2), "0.4"), result, sequence,
                   meta=lb.metaV3([[pre]]))


def _failed(rng, sequence):
    a, b = _pair(rng)
    envelope = lb.envelope(a, [Payment(b, XLM, "1"), Payment(b, USD, "2")], sequence=sequence)
    result = lb.transactionResult([lb.paymentSuccess(), lb.paymentFailure()], successful=False)
    return lb.BuiltTransaction(envelope, result, lb.metaV3([]))


def _feeBump(rng, sequence, passphrase):
    a, b = _pair(rng)
    inner = lb.envelope(a, [Payment(b, XLM, lb.amountText(_stroops(rng)))], sequence=sequence)
    bump = lb.feeBump(inner, rng.choice(ACCOUNTS))
    result = lb.transactionResult([lb.paymentSuccess()], bumped=bump, passphrase=passphrase)
    return lb.BuiltTransaction(bump, result, lb.metaV3([[]]))


def _accountMerge(rng, sequence):
    a = lb.account(rng.randint(100, 199))
    b = rng.choice(ACCOUNTS)
    return _single(a, AccountMerge(b), lb.accountMergeSuccess(_stroops(rng)), sequence)


def classicTransactions(seed, ledger, passphrase, count=8):
    """
    The L{lb.BuiltTransaction}s of C{ledger}, in apply order (deterministic for C{seed}).
    """
    rng = random.Random("{}/{}".format(seed, ledger))
    built = []
    for index in range(count):
        kind = KINDS[(ledger + index) % len(KINDS)] if index < len(KINDS) else rng.choice(KINDS)
        sequence = ledger * 1000 + index
        if kind == "fee_bump":
            built.append(_feeBump(rng, sequence, passphrase))
        else:
            built.append(_BUILDERS[kind](rng, sequence))
    return built


_BUILDERS = {
    "payment": _payment,
    "muxed_payment": _muxedPayment,
    "create_account": _createAccount,
    "path_send": _pathSend,
    "path_receive": _pathReceive,
    "offer_cross": _offerCross,
    "failed": _failed,
    "account_merge": _accountMerge,
}
