"""
The GetLedgersRPC processor: whole ledgers -> payment, trade and contract_event messages, decoded
and extracted in worker processes (L{stellarflow.ledgers.pool}).

It is a service: the pipeline starts it (its workers) before its source and stops it after.
C{process(items)} returns a Deferred firing with the messages of every ledger, in ledger order;
each message arrives sealed (its JSON text encoded once, in the worker).  A ledger that cannot
be decoded, or whose decoded header is not the one its source checked, fails the Deferred with
L{LedgerDecodeError}: its source stops there.
"""

from twisted.application.service import Service
from twisted.internet.defer import gatherResults, maybeDeferred
from zope.interface import implementer, provider

from stellarflow.events.network import networkPassphrase
from stellarflow.interfaces import IComponentFactory, IProcessor, IStatsProvider
from stellarflow.ledgers.pool import LedgerDecodeError, WorkerPool
from stellarflow.meta import MESSAGE_TYPES
from stellarflow.schema import Field, Integer, ListOf, Schema, String

CONFIG_SCHEMA = Schema(
    {
        "emit": Field(
            ListOf(String(choices=MESSAGE_TYPES), minItems=1),
            list(MESSAGE_TYPES),
            "the message types to produce: payment, trade, contract_event",
        ),
        "workers": Field(Integer(1, 64), 2, "worker processes decoding ledgers (each uses one core while busy)"),
    },
    doc="Turns whole ledgers (from `RPCSourceAdapter` with `rpc_method: getLedgers`, or from "
    "`DataLakeSourceAdapter`) into messages, in worker processes.",
)


def _unwrap(failure):
    """
    The first error of a C{gatherResults} failure.
    """
    value = getattr(failure.value, "subFailure", None)
    return value if value is not None else failure


@provider(IComponentFactory)
@implementer(IProcessor, IStatsProvider)
class GetLedgersRPC(Service):
    """
    Decodes ledgers in a L{WorkerPool} it owns.

    @param pool: a L{WorkerPool} (its parent is this service).
    """

    configSchema = CONFIG_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        pool = WorkerPool(context.reactor, networkPassphrase(context.network), config["emit"], workers=config["workers"])
        return cls(pool)

    def __init__(self, pool):
        self.pool = pool
        #: What C{emit} asks for (see L{IProcessor.producedTypes}).
        self.producedTypes = frozenset(pool.emit)
        self.ledgers = 0

    def startService(self):
        Service.startService(self)
        self.pool.startService()

    def stopService(self):
        Service.stopService(self)
        return self.pool.stopService()

    def process(self, items):
        results = []
        for item in items:
            d = maybeDeferred(self.pool.submit, item.payload, item.format, ledger=item.sequence,
                              protocol=item.protocol)
            d.addCallback(self._check, item)
            results.append(d)
        d = gatherResults(results, consumeErrors=True)
        d.addCallbacks(self._messages, lambda f: _unwrap(f))
        return d

    def _check(self, decoded, item):
        """
        The decoded ledgers must be the ones the source checked; then their bytes are let go.
        """
        if not decoded:
            raise LedgerDecodeError("ledger {} decoded to no ledger at all".format(item.sequence), item.sequence)
        first, last = decoded[0], decoded[-1]
        if first.sequence != item.sequence or last.sequence != item.last or (
                item.hash is not None and last.hash != item.hash) or (
                item.previousHash is not None and first.previousHash != item.previousHash):
            raise LedgerDecodeError(
                "the metadata of ledger {} is of ledger {} (hash {}), not of the header the source checked "
                "(hash {})".format(item.sequence, last.sequence, last.hash, item.hash), item.sequence)
        item.payload = None
        return decoded

    def _messages(self, results):
        messages = []
        for decoded in results:
            self.ledgers += len(decoded)
            for ledger in decoded:
                messages.extend(ledger.messages)
        return messages

    def stats(self):
        return {
            "ledgers_total": self.ledgers,
            "worker_deaths_total": self.pool.deaths,
            "ledgers_queued": self.pool.queued,
            "ledgers_in_flight": self.pool.inFlight,
        }
