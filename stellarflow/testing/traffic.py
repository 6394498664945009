"""
Deterministic synthetic contract events for the test Stellar RPC server.

Every ledger's events are a pure function of C{(seed, ledger)}: a restarted server, or a second
one with the same settings, serves byte-identical events. Token events are CAP-67 shaped SAC
events emitted by the real SAC contract id of each asset on the configured network; a share of
events are non-token (a counter, an oracle, a contract emitting token look-alike topics, and
"system" events) so that consumers must check what they parse.

Events are cheap: topics are encoded once per distinct value (a small vocabulary), values and
JSON renderings are encoded on first use, and whole ledgers are cached (LRU).
"""

import hashlib
import random
from collections import OrderedDict
from datetime import datetime, timezone

from stellar_sdk import Asset, Keypair, Network, StrKey, scval

from stellarflow import positions
from stellarflow.testing.getevents import FORMAT_JSON

DEFAULT_PASSPHRASE = Network.TESTNET_NETWORK_PASSPHRASE
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
DEFAULT_ASSETS = ("native", "USDC:" + USDC_ISSUER)
DEFAULT_ACCOUNTS = 5

# Relative weights of event kinds. Token kinds are SAC events (CAP-46-6 / CAP-67 shapes);
# the rest are emitted by other contracts.
DEFAULT_KINDS = {
    "transfer": 40,
    "fee": 20,
    "mint": 6,
    "burn": 5,
    "approve": 4,
    "clawback": 2,
    "set_authorized": 2,
    "set_admin": 1,
    "counter": 8,
    "oracle": 5,
    "lookalike": 4,
    "system": 3,
}
TOKEN_KINDS = frozenset(
    ["transfer", "fee", "mint", "burn", "approve", "clawback", "set_authorized", "set_admin"]
)
_ISSUED_ONLY = frozenset(["mint", "burn", "clawback", "set_authorized", "set_admin"])


def rfc3339(timestamp):
    """
    Unix seconds -> C{2026-07-21T18:01:10Z} (Go's C{time.RFC3339} in UTC).
    """
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(*parts):
    return hashlib.sha256("/".join(str(p) for p in parts).encode("utf-8")).digest()


class AssetInfo:
    """
    A configured asset: its SEP-11 topic string and SAC contract id on the network.
    """

    def __init__(self, name, passphrase):
        self.name = name
        if name == "native":
            self.asset = Asset.native()
        else:
            code, _, issuer = name.partition(":")
            self.asset = Asset(code, issuer)
        self.native = self.asset.is_native()
        self.issuer = None if self.native else self.asset.issuer
        self.contract_id = self.asset.contract_id(passphrase)

    def __repr__(self):
        return "AssetInfo(%r, %r)" % (self.name, self.contract_id)


class SyntheticEvent:
    """
    One event as getEvents would report it; renderings are computed once and cached.
    """

    __slots__ = (
        "ledger", "tx", "op", "index", "key", "id", "type", "contract_id", "tx_hash",
        "successful", "kind", "topic", "topic_json", "ledger_closed_at", "_value",
        "_value_xdr", "_value_json", "_encoded",
    )

    def __init__(self, ledger, tx, op, index, type_, contract_id, tx_hash, successful, kind,
                 topic, topic_json, value, ledger_closed_at):
        self.ledger = ledger
        self.tx = tx
        self.op = op
        self.index = index
        self.key = (ledger, tx, op, index)
        self.id = positions.eventId(ledger, tx, op, index)
        self.type = type_
        self.contract_id = contract_id
        self.tx_hash = tx_hash
        self.successful = successful
        self.kind = kind
        self.topic = topic
        self.topic_json = topic_json
        self.ledger_closed_at = ledger_closed_at
        self._value = value
        self._value_xdr = None
        self._value_json = None
        self._encoded = {}

    @property
    def valueXdr(self):
        if self._value_xdr is None:
            self._value_xdr = self._value.to_xdr()
        return self._value_xdr

    @property
    def valueJson(self):
        if self._value_json is None:
            self._value_json = self._value.to_json_dict()
        return self._value_json

    def asDict(self, xdr_format="base64", include_successful=True):
        """
        The event object of a getEvents response (field order as the Go server's).
        """
        d = {
            "type": self.type,
            "ledger": self.ledger,
            "ledgerClosedAt": self.ledger_closed_at,
            "contractId": self.contract_id,
            "id": self.id,
            "operationIndex": self.op,
            "transactionIndex": self.tx,
            "txHash": self.tx_hash,
        }
        if include_successful:
            d["inSuccessfulContractCall"] = self.successful
        if xdr_format == FORMAT_JSON:
            d["topicJson"] = list(self.topic_json)
            d["valueJson"] = self.valueJson
        else:
            d["topic"] = list(self.topic)
            d["value"] = self.valueXdr
        return d

    def encoded(self, xdr_format="base64", include_successful=True, dumps=None):
        """
        The event as compact JSON bytes (C{dumps} of L{asDict}), serialised once per format.
        """
        k = (xdr_format, include_successful)
        out = self._encoded.get(k)
        if out is None:
            out = dumps(self.asDict(xdr_format, include_successful))
            self._encoded[k] = out
        return out

    def __repr__(self):
        return "<SyntheticEvent %s %s %s>" % (self.id, self.kind, self.contract_id)


class TrafficGenerator:
    """
    Generates the events of any ledger from a seed.

    @param events_per_ledger: mean events per ledger; a fractional part C{f} adds one event to a
        ledger with probability C{f} (still deterministic per ledger).
    @param accounts: G... strkeys taking part; default: L{DEFAULT_ACCOUNTS} keypairs derived
        from the seed.
    @param assets: C{"native"} / C{"CODE:ISSUER"} strings.
    @param kinds: event kind -> relative weight (see L{DEFAULT_KINDS}).
    """

    def __init__(self, seed=0, events_per_ledger=3.0, passphrase=DEFAULT_PASSPHRASE,
                 accounts=None, assets=DEFAULT_ASSETS, kinds=None, cache_ledgers=4096):
        if events_per_ledger < 0:
            raise ValueError("events_per_ledger must be >= 0, got %r" % (events_per_ledger,))
        self.seed = seed
        self.events_per_ledger = float(events_per_ledger)
        self.passphrase = passphrase
        if accounts is None:
            accounts = [
                Keypair.from_raw_ed25519_seed(_digest("stellarflow-rpc", seed, "account", i)).public_key
                for i in range(DEFAULT_ACCOUNTS)
            ]
        if not accounts:
            raise ValueError("at least one account is needed")
        self.accounts = list(accounts)
        self.assets = [AssetInfo(a, passphrase) for a in assets]
        if not self.assets:
            raise ValueError("at least one asset is needed")
        self.native = AssetInfo("native", passphrase)
        self.issued = [a for a in self.assets if not a.native]
        self.contracts = {
            name: StrKey.encode_contract(_digest("stellarflow-rpc", seed, "contract", name))
            for name in ("pool", "counter", "oracle", "lookalike")
        }
        kinds = dict(DEFAULT_KINDS if kinds is None else kinds)
        unknown = set(kinds) - set(DEFAULT_KINDS)
        if unknown:
            raise ValueError("unknown event kinds: %s" % ", ".join(sorted(unknown)))
        self._kind_names = [k for k, w in kinds.items() if w > 0]
        self._kind_weights = [kinds[k] for k in self._kind_names]
        if not self._kind_names and self.events_per_ledger > 0:
            raise ValueError("no event kind has a positive weight")
        self._holders = self.accounts + [self.contracts["pool"]]
        self._vocab = {}
        self._cache = OrderedDict()
        self._cache_size = cache_ledgers

    # -- vocabulary: each distinct topic value is encoded once

    def _term(self, kind, value):
        key = (kind, value)
        term = self._vocab.get(key)
        if term is None:
            sc = {
                "sym": scval.to_symbol,
                "addr": scval.to_address,
                "str": scval.to_string,
                "bytes": scval.to_bytes,
            }[kind](value)
            term = self._vocab[key] = (sc.to_xdr(), sc.to_json_dict())
        return term

    def _topics(self, *terms):
        encoded = [self._term(k, v) for k, v in terms]
        return tuple(e[0] for e in encoded), tuple(e[1] for e in encoded)

    # -- ledgers

    def events(self, ledger, close_time):
        """
        The events of C{ledger} in id order (C{close_time}: the ledger's unix close time).
        """
        cached = self._cache.get(ledger)
        if cached is not None:
            self._cache.move_to_end(ledger)
            return cached
        events = self._generate(ledger, rfc3339(close_time))
        self._cache[ledger] = events
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return events

    def _generate(self, ledger, closed_at):
        rng = random.Random("stellarflow-rpc/%s/%d" % (self.seed, ledger))
        whole = int(self.events_per_ledger)
        count = whole + (1 if rng.random() < self.events_per_ledger - whole else 0)
        if count == 0:
            return []
        kinds = rng.choices(self._kind_names, self._kind_weights, k=count)
        fees = [k for k in kinds if k == "fee"]
        others = [k for k in kinds if k != "fee"]
        out = []
        # CAP-67 fee events are emitted before all transactions: transaction index 0,
        # one event index sequence across the ledger.
        for index, _ in enumerate(fees):
            tx_hash = hashlib.sha256(
                _digest("stellarflow-rpc", self.seed, ledger, "feetx", index)).hexdigest()
            out.append(self._make(rng, "fee", ledger, 0, 0, index, tx_hash, closed_at))
        tx = 0
        i = 0
        while i < len(others):
            tx += 1
            tx_hash = hashlib.sha256(_digest("stellarflow-rpc", self.seed, ledger, "tx", tx)).hexdigest()
            op = rng.randrange(0, 2)
            size = rng.randint(1, 3)
            for index, kind in enumerate(others[i:i + size]):
                out.append(self._make(rng, kind, ledger, tx, op, index, tx_hash, closed_at))
            i += size
        return out

    def _make(self, rng, kind, ledger, tx, op, index, tx_hash, closed_at):
        if kind in _ISSUED_ONLY and not self.issued:
            kind = "transfer"
        successful = True
        type_ = "contract"
        amount = rng.randrange(1, 10 ** 11)
        if kind == "fee":
            asset = self.native
            contract = asset.contract_id
            topic = self._topics(("sym", "fee"), ("addr", rng.choice(self.accounts)))
            value = scval.to_int128(rng.randrange(100, 1_000_000))
            successful = rng.random() >= 0.1
        elif kind in TOKEN_KINDS:
            asset = rng.choice(self.issued) if kind in _ISSUED_ONLY else rng.choice(self.assets)
            contract = asset.contract_id
            topic, value = self._token(rng, kind, asset, amount)
        elif kind == "counter":
            contract = self.contracts["counter"]
            topic = self._topics(("sym", "COUNTER"), ("sym", "increment"))
            value = scval.to_uint32(rng.randrange(1, 1 << 16))
        elif kind == "oracle":
            contract = self.contracts["oracle"]
            topic = self._topics(("sym", "reflector"), ("sym", "prices"), ("sym", "update"))
            value = scval.to_vec([scval.to_int128(rng.randrange(1, 10 ** 15)) for _ in range(3)])
        elif kind == "lookalike":
            # Same topics as a real USDC transfer, emitted by a contract that is not the SAC.
            contract = self.contracts["lookalike"]
            name = (self.issued[0] if self.issued else self.native).name
            a, b = rng.sample(self._holders, 2)
            topic = self._topics(("sym", "transfer"), ("addr", a), ("addr", b), ("str", name))
            value = scval.to_int128(amount)
        elif kind == "system":
            # Illustrative: a contract executable update (old and new wasm hashes).
            type_ = "system"
            contract = self.contracts["counter"]
            topic = self._topics(
                ("sym", "executable_update"),
                ("bytes", _digest(self.seed, ledger, tx, "old")),
                ("bytes", _digest(self.seed, ledger, tx, "new")),
            )
            value = scval.to_void()
        else:
            raise AssertionError(kind)
        return SyntheticEvent(ledger, tx, op, index, type_, contract, tx_hash, successful, kind,
                              topic[0], topic[1], value, closed_at)

    def _token(self, rng, kind, asset, amount):
        name = ("str", asset.name)
        if kind == "transfer":
            a, b = rng.sample(self._holders, 2)
            topic = self._topics(("sym", "transfer"), ("addr", a), ("addr", b), name)
            if rng.random() < 0.1:
                value = scval.to_map({
                    scval.to_symbol("amount"): scval.to_int128(amount),
                    scval.to_symbol("to_muxed_id"): scval.to_uint64(rng.randrange(1, 1 << 64)),
                })
            else:
                value = scval.to_int128(amount)
        elif kind == "mint":
            topic = self._topics(("sym", "mint"), ("addr", rng.choice(self._holders)), name)
            value = scval.to_int128(amount)
        elif kind == "burn":
            topic = self._topics(("sym", "burn"), ("addr", rng.choice(self._holders)), name)
            value = scval.to_int128(amount)
        elif kind == "clawback":
            topic = self._topics(("sym", "clawback"), ("addr", rng.choice(self.accounts)), name)
            value = scval.to_int128(amount)
        elif kind == "approve":
            a, b = rng.sample(self._holders, 2)
            topic = self._topics(("sym", "approve"), ("addr", a), ("addr", b), name)
            value = scval.to_vec([scval.to_int128(amount), scval.to_uint32(rng.randrange(1, 1 << 31))])
        elif kind == "set_authorized":
            topic = self._topics(("sym", "set_authorized"), ("addr", rng.choice(self.accounts)), name)
            value = scval.to_bool(rng.random() < 0.8)
        elif kind == "set_admin":
            topic = self._topics(("sym", "set_admin"), ("addr", asset.issuer), name)
            value = scval.to_address(rng.choice(self.accounts))
        else:
            raise AssertionError(kind)
        return topic, value

