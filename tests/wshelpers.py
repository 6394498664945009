"""
Helpers for the WebSocket tests: event messages as the pipeline produces them, and a fake
L{IClientConnection} recording what the hub writes (no sockets).
"""

import json

from stellar_sdk import Keypair, MuxedAccount
from zope.interface import implementer

from stellarflow.interfaces import IClientConnection


def account(i):
    return Keypair.from_raw_ed25519_seed(bytes([i + 1]) * 32).public_key


G1, G2, G3 = account(0), account(1), account(2)
M1 = MuxedAccount(G1, 42).account_muxed
USDC_ISSUER = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
USDC_SAC = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
NATIVE_SAC = "CAS3J7GYLGXMF6TDJBBYYSE3HQ6BBSMLNUQ34T6TZMYMW2EVH34XOWMA"
LOOKALIKE = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"

GUIDE_WELCOME = {
    "type": "welcome",
    "message": "Please send registration message to begin receiving events",
    "format": {
        "type": "register",
        "filters": {"types": [], "account_ids": [], "asset_codes": [], "min_amount": ""},
    },
}


def eventId(n):
    return "%019d-%010d" % (n, 0)


def tokenEvent(n, event_type="transfer", frm=G1, to=G2, code="USDC", amount="150", verified=True, contract=None):
    """
    A token event message as the GetEventsRPC processor emits it (see MESSAGE.md).
    """
    native = code == "XLM"
    if contract is None:
        contract = NATIVE_SAC if native else USDC_SAC
    return {
        "type": "contract_event",
        "id": eventId(n),
        "ledger": 1000 + n,
        "ledger_closed_at": "2026-07-21T18:01:10Z",
        "transaction_hash": "ab" * 32,
        "contract_id": contract,
        "operation_index": 0,
        "transaction_index": 1,
        "in_successful_contract_call": True,
        "event_kind": "contract",
        "topics": [event_type, frm, to, "native" if native else code + ":" + USDC_ISSUER],
        "data": amount,
        "event_type": event_type,
        "from": frm,
        "to": to,
        "account_ids": [a for a in (frm, to) if a],
        "asset_code": code,
        "asset_issuer": None if native else USDC_ISSUER,
        "amount": amount,
        "amount_raw": None if amount is None else str(int(float(amount) * 10**7)),
        "asset_verified": verified,
    }


def plainEvent(n, contract=LOOKALIKE):
    """
    A contract event that is not a token event.
    """
    return {
        "type": "contract_event",
        "id": eventId(n),
        "ledger": 1000 + n,
        "ledger_closed_at": None,
        "transaction_hash": None,
        "contract_id": contract,
        "operation_index": None,
        "transaction_index": None,
        "in_successful_contract_call": None,
        "event_kind": "contract",
        "topics": ["hello"],
        "data": None,
    }


@implementer(IClientConnection)
class FakeConnection:
    """
    Records what the hub writes.  With C{bufferLimit} set, the fake transport pauses its
    producer once that many frames were written since the last resume (a full write buffer).
    """

    def __init__(self, peer="tcp4:10.0.0.1:4000"):
        self.peer = peer
        self.frames = []
        self.writes = []
        self.closed = None
        self.drainTimeout = None
        self.aborted = False
        self.reading = True
        self.producer = None
        self.streaming = None
        self.bufferLimit = None
        self.sinceResume = 0

    def registerProducer(self, producer, streaming):
        self.producer = producer
        self.streaming = streaming

    def send(self, frame):
        self.sendMany([frame])

    def sendMany(self, frames):
        if self.closed is not None:
            raise AssertionError("frame written after close: {!r}".format(frames))
        self.writes.append(len(frames))
        for frame in frames:
            self.frames.append(frame)
            self.sinceResume += 1
            if self.bufferLimit is not None and self.sinceResume >= self.bufferLimit:
                self.producer.pauseProducing()

    def drain(self):
        """
        The client read everything: the transport resumes its producer.
        """
        self.sinceResume = 0
        self.producer.resumeProducing()

    def close(self, code, reason, drainTimeout=None):
        self.closed = (code, reason)
        self.drainTimeout = drainTimeout

    def abort(self):
        self.aborted = True

    def pauseReading(self):
        self.reading = False

    def resumeReading(self):
        self.reading = True

    def messages(self):
        return [json.loads(f) for f in self.frames]

    def events(self):
        return [m["id"] for m in self.messages() if m["type"] == "contract_event"]

    def types(self):
        return [m["type"] for m in self.messages()]


class BrokenConnection(FakeConnection):
    """
    A connection whose writes fail once its client registered.
    """

    def sendMany(self, frames):
        if self.producer is not None and self.producer.registered:
            raise OSError("socket exploded")
        FakeConnection.sendMany(self, frames)


def register(hub, session, filters=None, resume_after=None, **extra):
    """
    Send C{session}'s C{register} message to C{hub}.
    """
    message = {"type": "register", "filters": filters or {}}
    if resume_after is not None:
        message["resume_after"] = resume_after
    message.update(extra)
    hub.received(session, json.dumps(message).encode(), False)


class ScriptedSocket:
    """
    What a Twisted TCP transport needs of its socket, with C{send} answering from a script:
    each call takes the next step, a number of bytes to accept at most or an exception to
    raise; without steps left it accepts everything.  C{sent} is what it accepted, call by call.
    """

    def __init__(self, *script):
        self.script = list(script)
        self.sent = []

    def setblocking(self, flag):
        pass

    def fileno(self):
        return -1

    def send(self, data):
        data = bytes(data)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            data = data[:step]
        self.sent.append(data)
        return len(data)

    def received(self):
        """
        Everything accepted, in order.
        """
        return b"".join(self.sent)


def tcpTransport(protocol, sock):
    """
    A real Twisted TCP server transport for C{protocol} over C{sock} (a L{ScriptedSocket}), in
    a L{MemoryReactor}: its writer registration shows whether it holds data to write.
    """
    from twisted.internet import tcp
    from twisted.internet.testing import MemoryReactor

    reactor = MemoryReactor()
    transport = tcp.Server(sock, protocol, ("127.0.0.1", 50000), None, 1, reactor)
    return transport, reactor


def textFrame(payload):
    """
    The wire bytes of a server's unmasked text frame of a short C{payload}.
    """
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload
