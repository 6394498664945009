"""
The data-lake source (``DataLakeSourceAdapter``): reads ledgers from a Stellar data lake
(SEP-54, L{stellarflow.ledgers.lake}) in a local directory or behind an HTTP(S) base URL, from
``start_ledger`` to ``end_ledger`` or on and on, and (with ``then``) hands over to ``getLedgers``.

Each batch is up to ``ledgers_per_batch`` objects read in parallel, one L{LedgerItem} each
(its compressed bytes; the C{GetLedgersRPC} processor decodes them in its workers).  The chain
is checked as for getLedgers (L{stellarflow.ledgers.chain}); an object that is not there yet
is waited for (``poll_interval``); a read that fails is retried with backoff.

B{Handover.}  With ``then`` (a getLedgers RPC source config), before each batch the source asks
the RPC's ``getHealth`` for its oldest ledger; once the next ledger is at least
``handover_margin`` ledgers above it, it starts that getLedgers source from the position and
hash of the last ledger the lake delivered.  The margin keeps the RPC's retention window (which
moves about one ledger every 5 seconds) from overtaking the handover point between the check
and the first getLedgers request; the hash check spans the handover, so neither a gap nor a
duplicate goes unnoticed.
"""

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from stellarflow import positions
from stellarflow.backoff import Backoff
from stellarflow.batch import Batch
from stellarflow.checkpoint import Checkpoint
from stellarflow.events.network import networkPassphrase, passphraseProblem
from stellarflow.interfaces import IComponentFactory, ISource, IStatsProvider
from stellarflow.ledgers.chain import follow
from stellarflow.ledgers.lake import LakeError, Manifest, ObjectError, objectItem, objectPaths, openLake
from stellarflow.ledgers.pool import LedgerDecodeError
from stellarflow.rpc.client import endpointOf
from stellarflow.rpc.config import CONFIG_SCHEMA as RPC_SCHEMA
from stellarflow.rpc.policy import DeliveryFailed, FailurePolicy
from stellarflow.schema import INVALID, Field, Integer, Kind, Number, Schema, String, join, redact

MAX_LEDGER = positions.MAX_LEDGER


class _Mapping(Kind):
    """
    The ``then`` mapping: checked in the cross-check with the RPC source's schema; shown in
    logs with that schema's secrets hidden and URL shortened.
    """

    expected = "a mapping (a getLedgers RPC source config: rpc_url, network, ...)"

    @staticmethod
    def shownAs(value):
        return redact(value, RPC_SCHEMA) if isinstance(value, dict) else value

    def check(self, value, path, problems):
        if value is None:
            return None
        if not isinstance(value, dict):
            return self.fail(value, path, problems)
        return dict(value)


def _locationProblem(value):
    if value.startswith(("http://", "https://", "file://", "/", ".")) or "://" not in value:
        return None
    return "an http(s):// base URL, a file:// URL or a directory"


def _shownLocation(value):
    # an object store's URL may carry a signature or key in its query: logs show scheme://host
    return endpointOf(value) if value.startswith(("http://", "https://")) else value


def _crossCheck(config, path, problems):
    start, end = config["start_ledger"], config["end_ledger"]
    if end and end < start:
        problems.add(join(path, "end_ledger"), "got {}; expected >= start_ledger ({})".format(end, start))
    then = config["then"]
    if then is not None:
        if end:
            problems.add(join(path, "then"), "a backfill with end_ledger does not hand over; remove one of them")
        then.setdefault("rpc_method", "getLedgers")
        then.setdefault("network", config["network"])
        checked = RPC_SCHEMA.check(then, join(path, "then"), problems)
        if checked is not INVALID:
            if checked["rpc_method"] != "getLedgers":
                problems.add(join(join(path, "then"), "rpc_method"), "got {!r}; expected 'getLedgers'".format(
                    checked["rpc_method"]))
            elif networkPassphrase(checked["network"]) != networkPassphrase(config["network"]):
                problems.add(join(join(path, "then"), "network"), "got {!r}; expected the lake's network {!r}".format(
                    checked["network"], config["network"]))
            config["then"] = checked


CONFIG_SCHEMA = Schema(
    {
        "url": Field(String(nonEmpty=True, validator=_locationProblem, shownAs=_shownLocation),
                     doc="the lake's root: an http(s):// base URL of an object store, or a local directory"),
        "network": Field(String(validator=passphraseProblem),
                         doc="mainnet, testnet, futurenet or a passphrase; must equal the lake manifest's"),
        "start_ledger": Field(Integer(2, MAX_LEDGER), doc="first ledger to read (inclusive)"),
        "end_ledger": Field(Integer(0, MAX_LEDGER), 0, "last ledger (inclusive); 0: follow the lake on (or hand over)"),
        "ledgers_per_batch": Field(Integer(1, 200), 6, "ledgers (objects) read in parallel and delivered as one batch "
                                   "(as getLedgers' pagination.limit; see docs/source.md)"),
        "poll_interval": Field(Number(0, 3600), 5.0, "seconds between looks for an object not written yet"),
        "request_timeout": Field(Number(0, 600, exclusiveMinimum=True), 30.0, "seconds per object read"),
        "on_gap": Field(String(choices=("skip", "stop")), "skip", "when the chain breaks"),
        "then": Field(_Mapping(), None, "a getLedgers RPC source config to hand over to at the RPC's oldest ledger"),
        "handover_margin": Field(Integer(0, 100000), 20, "hand over this many ledgers above the RPC's oldest"),
    },
    check=_crossCheck,
    doc="Reads whole ledgers from a Stellar data lake (SEP-54) for the `GetLedgersRPC` processor; with `then`, "
    "hands over to getLedgers.",
)


@provider(IComponentFactory)
@implementer(ISource, IStatsProvider)
class DataLakeSourceAdapter:
    """
    See the module docstring.

    @param lake: a L{stellarflow.ledgers.lake.DirectoryLake} or L{HTTPLake}.
    @param handover: C{None}, or a callable returning an unstarted getLedgers source
        (L{stellarflow.ledgers.source.GetLedgersSource}) to hand over to.
    """

    log = Logger()
    configSchema = CONFIG_SCHEMA

    @classmethod
    def fromConfig(cls, config, context):
        lake = openLake(config["url"], context.reactor, config["request_timeout"])
        handover = None
        if config["then"] is not None:
            from stellarflow.ledgers.source import GetLedgersSource

            rpc = config["then"]

            def handover():
                return GetLedgersSource.fromConfig(rpc, context)

        return cls(lake, context.reactor, network=config["network"], start_ledger=config["start_ledger"],
                   end_ledger=config["end_ledger"], limit=config["ledgers_per_batch"],
                   poll_interval=config["poll_interval"], on_gap=config["on_gap"], handover=handover,
                   margin=config["handover_margin"], name=context.pipeline)

    def __init__(self, lake, clock, network, start_ledger, end_ledger=0, limit=6, poll_interval=5.0, on_gap="skip",
                 handover=None, margin=20, backoff=None, name=""):
        self.lake = lake
        self.clock = clock
        self.network = network
        self.passphrase = networkPassphrase(network)
        self.start_ledger = start_ledger
        self.end_ledger = end_ledger or None
        self.limit = limit
        self.poll_interval = poll_interval
        self.margin = margin
        self.newHandover = handover
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.policy = FailurePolicy(lake.endpoint, on_gap, self.backoff, self.log, method="data lake")
        self.name = name
        self.manifest = None
        self.rpc = None
        self.handedOver = False
        self.last = None
        self.lastHash = None
        self._deliver = None
        self._ended = None
        self._timer = None
        self._busy = None
        self._stopping = False
        self._waiting = False
        self.polling = False
        self.rpcOldest = None
        self.objects = 0
        self.errors = 0
        self.ledgersDelivered = 0
        self.gaps = []
        self.fatal = None
        self.complete = False
        self.lastError = None

    def __repr__(self):
        return "<DataLakeSourceAdapter {} last={!r}>".format(self.lake.endpoint, self.last)

    @property
    def nextLedger(self):
        return self.last + 1 if self.last is not None else self.start_ledger

    def stats(self):
        stats = {
            "lake_objects_total": self.objects,
            "lake_errors_total": self.errors,
            "lake_ledgers_total": self.ledgersDelivered,
            "gaps_total": len(self.gaps),
            "latest_ledger": None,
            "lag_ledgers": None,
            "polling": self.polling,
            "handed_over": self.handedOver,
        }
        if self.rpc is not None:
            inner = self.rpc.stats()
            stats.update({k: v for k, v in inner.items() if k != "gaps_total"})
            stats["gaps_total"] += inner["gaps_total"]
        return stats

    # -- ISource -----------------------------------------------------------

    def start(self, deliver, checkpoint):
        self._deliver = deliver
        self._ended = ended = Deferred()
        self.polling = True
        if self.newHandover is not None:
            self.rpc = self.newHandover()
        checkpoint = Checkpoint.of(checkpoint)
        if checkpoint is not None:
            ledger = positions.ledgerOf(checkpoint.cursor)
            if ledger is None:
                self._fatal("the checkpoint {!r} is not a position".format(checkpoint.cursor))
                return ended
            if checkpoint.network is not None and networkPassphrase(checkpoint.network) != self.passphrase:
                self._fatal("the checkpoint was taken on network {!r}, the source follows {!r}".format(
                    checkpoint.network, self.network))
                return ended
            if checkpoint.cursor == positions.ledgerEnd(ledger):
                self.last, self.lastHash = ledger, checkpoint.hash
            else:
                self.last, self.lastHash = ledger - 1, None
        self.log.info("Reading the data lake at {lake} from ledger {ledger}{until}", lake=self.lake.endpoint,
                      ledger=self.nextLedger, until=" to {}".format(self.end_ledger) if self.end_ledger else (
                          ", then getLedgers" if self.rpc is not None else ""))
        self._schedule(0)
        return ended

    def stop(self):
        self._stopping = True
        self.polling = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        stops = [maybeDeferred(self.lake.close)]
        if self.rpc is not None:
            stops.append(maybeDeferred(self.rpc.stop))
        self._end(None)
        return DeferredList(stops, consumeErrors=True).addCallback(lambda _: None)

    # -- the loop ----------------------------------------------------------

    def _schedule(self, delay):
        self._timer = self.clock.callLater(delay, self._tick)

    def _tick(self):
        self._timer = None
        if self._stopping or not self.polling:
            return
        d = self._busy = self._cycle()
        d.addCallbacks(self._cycleDone, self._cycleFailed)
        d.addErrback(lambda f: self.log.failure("data lake source: internal error", f))

    def _cycleDone(self, delay):
        self._busy = None
        if delay is not None and self.polling and not self._stopping:
            self._schedule(delay)

    def _cycleFailed(self, failure):
        self._busy = None
        if self._stopping:
            return
        self.errors += 1
        self.lastError = failure.getErrorMessage()
        if failure.check(DeliveryFailed) and failure.value.failure.check(LedgerDecodeError):
            self._fatal(failure.value.failure.getErrorMessage())
            return
        if failure.check(ObjectError):
            self._fatal(failure.getErrorMessage())
            return
        delay = self.backoff.next()
        if failure.check(LakeError, DeliveryFailed):
            self.log.warn("Data lake read failed at ledger {ledger} ({error}); retrying in {delay:.1f}s",
                          ledger=self.nextLedger, error=failure.getErrorMessage(), delay=delay)
        else:
            self.log.failure("Data lake source: unexpected error; retrying in {delay:.1f}s", failure, delay=delay)
        if self.polling:
            self._schedule(delay)

    @inlineCallbacks
    def _cycle(self):
        if self.manifest is None:
            data = yield self.lake.read(".config.json")
            if data is None:
                self._fatal("{} has no .config.json: not a SEP-54 data lake".format(self.lake.endpoint))
                return None
            manifest = Manifest.fromJSON(data)
            if manifest.networkPassphrase != self.passphrase:
                self._fatal("NETWORK MISMATCH: the lake holds {!r}, the source is configured for {!r}".format(
                    manifest.networkPassphrase, self.passphrase))
                return None
            self.manifest = manifest
        first = self.nextLedger
        if self.end_ledger is not None and first > self.end_ledger:
            self._complete()
            return None
        if self.rpc is not None:
            yield self._rpcOldest()
            if self.rpcOldest is not None and first >= self.rpcOldest + self.margin:
                self._handOver()
                return None
        ledgers = []
        ledger = first
        while len(ledgers) < self.limit and (self.end_ledger is None or ledger <= self.end_ledger):
            ledgers.append(ledger)
            ledger = self.manifest.batchOf(ledger)[1] + 1
        results = yield DeferredList([self._readObject(n) for n in ledgers], fireOnOneErrback=True,
                                     consumeErrors=True)
        items = []
        for _, item in results:
            if item is None:
                break
            items.append(item)
        if self._stopping:
            return None
        accepted, stop = self._accept(items)
        if accepted:
            tail = accepted[-1]
            batch = Batch(items=accepted, cursor=positions.ledgerEnd(tail.last),
                          previous=positions.ledgerEnd(first - 1), hash=tail.hash)
            try:
                yield maybeDeferred(self._deliver, batch)
            except Exception:
                raise DeliveryFailed(Failure())
            self.last, self.lastHash = tail.last, tail.hash
            self.ledgersDelivered += sum(i.last - i.sequence + 1 for i in accepted)
            self._waiting = False
        self.backoff.reset()
        if stop is not None:
            self._fatal(stop.reason)
            return None
        if len(items) < len(ledgers):
            if self.rpc is not None and self.rpcOldest is not None and self.nextLedger >= self.rpcOldest:
                self._handOver()  # the RPC has what the lake has not written yet
                return None
            if not self._waiting:
                self.log.info("Ledger {ledger} is not in the data lake yet; looking again every {interval}s",
                              ledger=self.nextLedger, interval=self.poll_interval)
            self._waiting = True
            return self.poll_interval
        return 0

    @inlineCallbacks
    def _readObject(self, ledger):
        for path in objectPaths(self.manifest, ledger):
            data = yield self.lake.read(path)
            if data is not None:
                self.objects += 1
                return objectItem(data, self.manifest, ledger)
        return None

    def _accept(self, items):
        lastSequence = self.last if self.last is not None else self.start_ledger - 1
        return follow(items, lastSequence, self.lastHash, self.policy, self.gaps)

    @inlineCallbacks
    def _rpcOldest(self):
        try:
            health = yield self.rpc.client.getHealth()
        except Exception as e:
            self.log.warn("Cannot ask {endpoint} for its oldest ledger ({error}); reading the lake on",
                          endpoint=self.rpc.client.endpoint, error=str(e))
            return
        oldest = health.get("oldestLedger") if isinstance(health, dict) else None
        if isinstance(oldest, int):
            self.rpcOldest = oldest

    def _handOver(self):
        self.handedOver = True
        self.polling = False
        self.log.info("Handing over from the data lake to getLedgers at {endpoint} after ledger {ledger} (the RPC "
                      "keeps ledgers from {oldest})", endpoint=self.rpc.client.endpoint, ledger=self.last,
                      oldest=self.rpcOldest)
        after = self.last if self.last is not None else self.start_ledger - 1
        checkpoint = Checkpoint(positions.ledgerEnd(after), network=self.network, hash=self.lastHash)
        ended = self.rpc.start(self._deliver, checkpoint)
        ended.addBoth(self._end)

    # -- outcomes ----------------------------------------------------------

    def _complete(self):
        self.complete = True
        self.polling = False
        self.log.info("Data lake backfill complete: every ledger up to {ledger} delivered", ledger=self.end_ledger)
        self._end(None)

    def _fatal(self, reason):
        self.fatal = self.lastError = reason
        self.polling = False
        self.log.critical("Data lake source {pipeline} stopped at ledger {ledger}: {reason}", pipeline=self.name,
                          ledger=self.nextLedger, reason=reason)
        self._end(Failure(RuntimeError(reason)))

    def _end(self, result):
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.callback(None) if result is None else ended.errback(result)
        return None

