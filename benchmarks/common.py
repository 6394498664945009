"""
What the benchmarks and their load generators share: statistics, /proc readings, the file
limit, deterministic accounts and event messages.

Nothing here imports Twisted or the daemon's code, so the load generators stay light.
"""

import base64
import hashlib
import os
import resource
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# -- statistics ------------------------------------------------------------------------------


def median(values):
    """The median of C{values} (C{None} when empty)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2.0


def percentile(ordered, p):
    """The C{p}-th percentile (0-100, nearest rank) of an already sorted sequence."""
    if not ordered:
        return None
    rank = max(1, int(-(-p * len(ordered) // 100)))  # ceil(p/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


def summarise(values, scale=1.0):
    """p50/p95/p99/max of C{values} multiplied by C{scale}, plus the sample count."""
    ordered = sorted(values)
    out = {"n": len(ordered)}
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        value = percentile(ordered, p)
        out[name] = None if value is None else value * scale
    return out


# -- the machine and processes ------------------------------------------------------------


def cpuSeconds(pid=None):
    """User + system CPU seconds of a process (this one by default), from /proc/<pid>/stat."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open("/proc/{}/stat".format(pid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rssBytes(pid=None):
    """Resident set size of a process (this one by default), from /proc/<pid>/statm."""
    with open("/proc/{}/statm".format(pid or "self")) as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def machine():
    """What the figures were measured on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


def raiseFileLimit(wanted):
    """
    Raise this process's soft RLIMIT_NOFILE towards C{wanted} (never beyond the hard limit).
    Returns the C{(soft, hard)} limits now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# -- deterministic data ------------------------------------------------------------------------


def _crc16Table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16Table()


def _crc16(data):
    """CRC-16/XMODEM, the strkey checksum."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def account(i, tag="client"):
    """
    A valid, deterministic ``G...`` strkey for index C{i} (computed here so that the load
    generators need not import stellar_sdk).
    """
    payload = bytes([6 << 3]) + hashlib.sha256("stellarflow-bench/{}/{}".format(tag, i).encode()).digest()
    return base64.b32encode(payload + _crc16(payload).to_bytes(2, "little")).decode("ascii")


SAC_NATIVE = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"
#: The counterparty of every benchmark transfer; no client filters on it.
SINK = account(0, "sink")


def transferMessage(n, sender, receiver=SINK):
    """
    Event C{n} as GetEventsRPC emits a native transfer (every token field; ~960 bytes of JSON).
    """
    return {
        "type": "contract_event",
        "id": "%019d-%010d" % (n << 12, 0),
        "ledger": 3727845 + n // 50,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "%064x" % n,
        "contract_id": SAC_NATIVE,
        "operation_index": 0,
        "transaction_index": n % 50,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": ["transfer", sender, receiver, "native"],
        "data": str(123456789 + n),
        "event_type": "transfer",
        "from": sender,
        "to": receiver,
        "account_ids": [sender, receiver],
        "asset_code": "XLM",
        "asset_issuer": None,
        "amount": "%d.%07d" % divmod(123456789 + n, 10 ** 7),
        "amount_raw": str(123456789 + n),
        "asset_verified": True,
        "to_muxed_id": None,
    }


USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"


def _operationFields(kind, n, index, operationType):
    return {
        "type": kind,
        "id": "%019d-%010d" % (n << 12, index),
        "ledger": 3727845 + n // 50,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "%064x" % n,
        "transaction_index": n % 50,
        "operation_index": 0,
        "operation_type": operationType,
    }


def paymentMessage(n, sender, receiver=SINK):
    """
    Message C{n} as stellarflow.meta emits a classic path payment (XLM sent, USDC delivered).
    """
    message = _operationFields("payment", n, 3 << 30, "path_payment_strict_send")
    message.update({
        "from": sender, "to": receiver, "asset_code": "USDC", "asset_issuer": USDC_ISSUER,
        "amount": "%d.%07d" % divmod(123456789 + n, 10 ** 7), "source_asset_code": "XLM", "source_asset_issuer": None,
        "source_amount": "%d.%07d" % divmod(987654321 + n, 10 ** 7),
    })
    return message


def tradeMessage(n, seller, buyer):
    """
    Message C{n} as stellarflow.meta emits an order-book trade (USDC sold for XLM).
    """
    message = _operationFields("trade", n, 1 << 31, "manage_buy_offer")
    message.update({
        "trade_type": "orderbook", "seller": seller, "liquidity_pool_id": None, "offer_id": str(1614872181 + n),
        "buyer": buyer, "buyer_offer_id": None, "sold_asset_code": "USDC", "sold_asset_issuer": USDC_ISSUER,
        "sold_amount": "%d.%07d" % divmod(3941098 + n, 10 ** 7), "bought_asset_code": "XLM",
        "bought_asset_issuer": None, "bought_amount": "%d.%07d" % divmod(42884589 + n, 10 ** 7),
        "price": {"n": "108813809", "d": "10000000"},
    })
    return message


def now():
    """Wall-clock seconds (CLOCK_REALTIME): comparable across processes on one machine."""
    return time.time()
