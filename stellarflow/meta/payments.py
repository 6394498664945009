"""
Payments: Horizon's payment class, read from one operation of a successful transaction.

Horizon's ``/payments`` lists ``create_account``, ``payment``, ``path_payment_strict_receive``,
``path_payment_strict_send``, ``account_merge`` and the ``invoke_host_function`` operations whose
events include a Stellar Asset Contract ``transfer``, ``mint``, ``clawback`` or ``burn`` (its
``is_payment`` flag).  Here each of those is one payment, and an ``invoke_host_function`` gives
one payment per such event.  Claimable balances are not payments (as in Horizon).

Amounts follow Horizon's operation details:

=============================  ====================================  =============================
operation                      ``amount`` (delivered)                ``source_amount`` (sent)
=============================  ====================================  =============================
create_account                 ``startingBalance`` (XLM)
payment                        the op's ``amount``
path_payment_strict_receive    the op's ``destAmount``               the result's send amount: the
                                                                     ``amountBought`` of the leading
                                                                     claim atoms that took the send
                                                                     asset (``last.amount`` if none)
path_payment_strict_send       the result's ``last.amount``          the op's ``sendAmount``
account_merge                  the result's ``sourceAccountBalance``
                               (XLM); C{None} if a result lacks it
SAC event                      the event's amount
=============================  ====================================  =============================

The XDR puts ``sourceAccountBalance`` in every successful merge result, so a merge without an
amount would take a malformed ledger; it is handled (C{None}) rather than assumed away.

``from`` is the operation's source (else the transaction's; a fee bump's inner transaction's),
``to`` the destination (the new account, the merge target).  A muxed source or destination is
its ``G...`` account in ``from``/``to`` with ``from_muxed``/``from_muxed_id`` or
``to_muxed``/``to_muxed_id`` beside it.  A SAC payment's ``from``/``to`` are the event's
addresses (``G...`` or ``C...`` contracts); a ``mint`` has no ``from`` and a ``burn`` or
``clawback`` no ``to`` (C{None}); a CAP-67 ``to_muxed_id`` is kept (``to_muxed`` only when it is
a 64-bit id of a ``G...`` destination), and ``contract_id`` and ``event_type`` say which SAC
event it was.  The event must come from the asset's real contract,
C{Asset(code, issuer).contract_id(passphrase)} (``asset_verified`` of the decoded event).
"""

from stellarflow.events.tokens import formatAmount
from stellarflow.meta import values

# OperationType values.
CREATE_ACCOUNT = 0
PAYMENT = 1
PATH_PAYMENT_STRICT_RECEIVE = 2
ACCOUNT_MERGE = 8
PATH_PAYMENT_STRICT_SEND = 13
INVOKE_HOST_FUNCTION = 24

#: The operation types that are payments (an invoke_host_function only with SAC events).
PAYMENT_OPERATIONS = frozenset(
    (CREATE_ACCOUNT, PAYMENT, PATH_PAYMENT_STRICT_RECEIVE, ACCOUNT_MERGE, PATH_PAYMENT_STRICT_SEND,
     INVOKE_HOST_FUNCTION))

#: The SAC events that are payments (Horizon's ``is_payment``).
SAC_PAYMENT_EVENTS = frozenset(("transfer", "mint", "clawback", "burn"))

_SCV_U64 = 5
_SCV_SYMBOL = 15
_SCV_MAP = 17


def _parties(fields, source, destination):
    """
    Fill ``from``/``to`` and their muxed companions from C{xdr.MuxedAccount}s (C{destination}
    may be a rendered C{(G, M, id)} triple already).
    """
    account, muxed, muxedId = values.muxedAccount(source)
    fields["from"] = account
    if muxed is not None:
        fields["from_muxed"] = muxed
        fields["from_muxed_id"] = muxedId
    account, muxed, muxedId = destination if type(destination) is tuple else values.muxedAccount(destination)
    fields["to"] = account
    if muxed is not None:
        fields["to_muxed"] = muxed
        fields["to_muxed_id"] = muxedId


def _asset(fields, asset, amount, prefix=""):
    code, issuer = asset
    fields[prefix + "asset_code"] = code
    fields[prefix + "asset_issuer"] = issuer
    fields[prefix + "amount"] = amount


def strictReceiveSendAmount(success):
    """
    What a successful path_payment_strict_receive sent, in stroops (Horizon's ``SendAmount``):
    the ``amountBought`` of the leading claim atoms that bought the same asset as the first, or
    ``last.amount`` when no offer was crossed.
    """
    offers = success.offers
    if not offers:
        return success.last.amount.int64
    first = _atomBody(offers[0]).asset_bought
    total = 0
    for atom in offers:
        body = _atomBody(atom)
        if body.asset_bought != first:
            break
        total += body.amount_bought.int64
    return total


def _atomBody(atom):
    kind = atom.type.value
    return atom.v0 if kind == 0 else atom.order_book if kind == 1 else atom.liquidity_pool


def classicPayment(kind, op, source, result):
    """
    The payment fields of a successful classic payment operation (C{kind} its OperationType
    value, C{source} its effective source C{MuxedAccount}, C{result} its C{OperationResult}).
    """
    body = op.body
    fields = {}
    if kind == PAYMENT:
        payment = body.payment_op
        _parties(fields, source, payment.destination)
        _asset(fields, values.asset(payment.asset), values.amount(payment.amount))
    elif kind == CREATE_ACCOUNT:
        create = body.create_account_op
        _parties(fields, source, (values.accountId(create.destination), None, None))
        _asset(fields, ("XLM", None), values.amount(create.starting_balance))
    elif kind == PATH_PAYMENT_STRICT_SEND:
        path = body.path_payment_strict_send_op
        success = result.tr.path_payment_strict_send_result.success
        _parties(fields, source, path.destination)
        _asset(fields, values.asset(path.dest_asset), values.amount(success.last.amount))
        _asset(fields, values.asset(path.send_asset), values.amount(path.send_amount), "source_")
    elif kind == PATH_PAYMENT_STRICT_RECEIVE:
        path = body.path_payment_strict_receive_op
        success = result.tr.path_payment_strict_receive_result.success
        _parties(fields, source, path.destination)
        _asset(fields, values.asset(path.dest_asset), values.amount(path.dest_amount))
        _asset(fields, values.asset(path.send_asset), formatAmount(strictReceiveSendAmount(success)),
               "source_")
    elif kind == ACCOUNT_MERGE:
        balance = result.tr.account_merge_result.source_account_balance
        _parties(fields, source, body.destination)
        _asset(fields, ("XLM", None), None if balance is None else values.amount(balance))
    else:
        raise ValueError("operation type {} is not a classic payment".format(kind))
    return fields


def _toMuxed(event, to):
    """
    The ``M...`` address of a CAP-67 transfer/mint to a muxed account: when the event's data is
    a map whose ``to_muxed_id`` is a u64 and C{to} is a ``G...`` account; else C{None}.
    """
    data = event.body.v0.data
    if data.type.value != _SCV_MAP or data.map is None or not to or to[0] != "G":
        return None
    for entry in data.map.sc_map:
        key = entry.key
        if key.type.value == _SCV_SYMBOL and key.sym.sc_symbol == b"to_muxed_id":
            if entry.val.type.value == _SCV_U64:
                return values.muxedAddress(to, entry.val.u64.uint64)
            return None
    return None


def sacPayment(message, event):
    """
    The payment fields of a decoded contract event message (and its C{xdr.ContractEvent}) when it
    is a SAC payment (see the module docstring), else C{None}.
    """
    if (message.get("event_kind") != "contract" or message.get("asset_verified") is not True
            or message.get("event_type") not in SAC_PAYMENT_EVENTS):
        return None
    fields = {"from": message["from"], "to": message["to"]}
    muxedId = message.get("to_muxed_id")
    if muxedId is not None:
        muxed = _toMuxed(event, message["to"])
        if muxed is not None:
            fields["to_muxed"] = muxed
        fields["to_muxed_id"] = muxedId
    _asset(fields, (message["asset_code"], message["asset_issuer"]), message["amount"])
    fields["contract_id"] = message["contract_id"]
    fields["event_type"] = message["event_type"]
    return fields
