"""
Tests for client authentication (L{stellarflow.websocket.auth}): the authenticator on a
L{Clock}, and over real loopback sockets the exact HTTP statuses of refused upgrades, a token
accepted by header and by query parameter, and an open connection closed at its token's
expiry (4401).  A refused client never gets the welcome.
"""

import json
import time

import jwt
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from stellarflow.config import parse
from stellarflow.websocket.auth import Authenticator, AuthError, authSchema, bearerToken
from tests import edgehelpers as eh
from tests.test_websocket_e2e import Client, E2EMixin, until
from tests.wshelpers import G1, G2

SECRET = "s3cret-for-tests-only-0123456789abcdef"


class BearerTokenTests(SynchronousTestCase):
    def test_header(self):
        self.assertEqual(bearerToken({"authorization": "Bearer abc"}, {}), "abc")
        self.assertEqual(bearerToken({"authorization": "bearer  abc "}, {"access_token": ["x"]}), "abc")

    def test_query(self):
        self.assertEqual(bearerToken({}, {"access_token": ["q1", "q2"]}), "q1")
        self.assertIsNone(bearerToken({}, {}))

    def test_bad(self):
        for headers, params in [({"authorization": "Basic Zm9v"}, {}), ({"authorization": "Bearer "}, {}),
                                ({}, {"access_token": [""]})]:
            self.assertRaises(AuthError, bearerToken, headers, params)


class AuthenticatorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.now = self.clock.seconds()

    def auth(self, **kw):
        return Authenticator(self.clock, **kw)

    def check(self, authenticator, token):
        return authenticator.authenticate({"authorization": "Bearer " + token}, {})

    def refused(self, authenticator, token):
        return str(self.assertRaises(AuthError, self.check, authenticator, token))

    def test_offWhenNothingConfigured(self):
        self.assertIsNone(Authenticator.fromConfig(self.clock, {}))
        self.assertIsNone(Authenticator.fromConfig(self.clock, None))
        self.assertIsNone(Authenticator.fromConfig(self.clock, {"tokens": [], "jwt_audience": "x"}))

    def test_staticTokens(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("# comment\n\n  from-file  \n")
        a = self.auth(tokens=["t1", "t2"], tokens_file=path)
        for token in ("t1", "t2", "from-file"):
            self.assertIsNone(self.check(a, token).expiresAt)
        self.assertEqual(self.refused(a, "t3"), "invalid token")
        self.assertEqual(self.refused(a, "# comment"), "invalid token")
        self.assertEqual(a.kinds, "3 static token(s)")

    def test_tokensKeptAsDigestsOnly(self):
        a = self.auth(tokens=["plain-secret-token"])
        self.assertNotIn("plain-secret-token", repr(vars(a)))

    def test_noToken(self):
        a = self.auth(tokens=["t"])
        e = self.assertRaises(AuthError, a.authenticate, {}, {})
        self.assertIn("authentication required", str(e))

    def test_hs256(self):
        a = self.auth(jwt_secret=SECRET)
        grant = self.check(a, eh.hsToken(SECRET, sub="alice", exp=self.now + 60))
        self.assertEqual((grant.subject, grant.expiresAt), ("alice", self.now + 60))
        self.assertEqual(self.refused(a, eh.hsToken("other-secret-0123456789abcdef0123", exp=self.now + 60)),
                         "invalid token: bad signature")

    def test_expAndNbfOnTheClock(self):
        """
        exp and nbf are checked against the injected clock, at their boundaries.
        """
        a = self.auth(jwt_secret=SECRET)
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, exp=self.now)), "token expired")
        self.check(a, eh.hsToken(SECRET, exp=self.now + 1))
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, nbf=self.now + 1)), "token not yet valid")
        self.check(a, eh.hsToken(SECRET, nbf=self.now))
        leeway = self.auth(jwt_secret=SECRET, jwt_leeway=5)
        self.check(leeway, eh.hsToken(SECRET, exp=self.now - 4))
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, exp="soon")), "invalid token: exp is not a number")

    def test_audienceAndIssuer(self):
        a = self.auth(jwt_secret=SECRET, jwt_audience="stellarflow", jwt_issuer="me")
        self.check(a, eh.hsToken(SECRET, aud="stellarflow", iss="me"))
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, aud="other", iss="me")), "invalid token: wrong audience")
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, iss="me")), "invalid token: no aud claim")
        self.assertEqual(self.refused(a, eh.hsToken(SECRET, aud="stellarflow", iss="you")), "invalid token: wrong issuer")

    def test_publicKeys(self):
        for kind in ("RS256", "ES256"):
            private, public = eh.keyPair(kind)
            path = self.mktemp()
            with open(path, "wb") as f:
                f.write(public)
            a = self.auth(jwt_public_key_file=path)
            self.assertEqual(a.kinds, "JWT ({})".format(kind))
            self.check(a, jwt.encode({"sub": "k"}, private, algorithm=kind))
            # an HS256 token "signed" with the public key (algorithm confusion) is refused
            forged = jwt.encode({"sub": "k"}, SECRET, algorithm="HS256")
            self.assertEqual(self.refused(a, forged), "invalid token: algorithm not accepted")

    def test_noneAlgorithmRefused(self):
        a = self.auth(jwt_secret=SECRET)
        token = jwt.encode({"sub": "x"}, None, algorithm="none")
        self.assertEqual(self.refused(a, token), "invalid token: algorithm not accepted")

    def test_limitsClaim(self):
        a = self.auth(jwt_secret=SECRET)
        grant = self.check(a, eh.hsToken(SECRET, stellarflow={"max_filter_entries": 5, "types": ["mint"],
                                                              "account_ids": [G1]}))
        self.assertEqual((grant.maxFilterEntries, grant.types, grant.accountIds), (5, {"mint"}, {G1}))
        for bad in ({"max_filter_entries": -1}, {"types": "mint"}, {"account_ids": [1]}, ["x"]):
            self.assertIn("invalid token", self.refused(a, eh.hsToken(SECRET, stellarflow=bad)))

    def test_garbage(self):
        a = self.auth(jwt_secret=SECRET, tokens=["t"])
        for token in ("a.b.c", "x" * 9000, "..", "e30.e30.", "%00"):
            self.assertTrue(self.refused(a, token).startswith(("invalid token", "token too long")))


class AuthConfigTests(SynchronousTestCase):
    def test_badKeyFile(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("not a key")
        config, problems = authSchema.validate({"jwt_public_key_file": path, "tokens": "x"}, "c.auth")
        self.assertIsNone(config)
        text = "\n".join("{}: {}".format(p.path, p.message) for p in problems)
        self.assertIn("c.auth.tokens", text)
        self.assertNotIn("'x'", text)  # a secret is not echoed

    def test_keyFileChecked(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("not a key")
        config, problems = authSchema.validate({"jwt_public_key_file": path}, "c.auth")
        self.assertEqual([p.path for p in problems], ["c.auth.jwt_public_key_file"])
        self.assertIn("PEM RSA or EC P-256", problems[0].message)

    def test_tokensFromEnvironmentAndRedacted(self):
        """
        A ${VAR} token is expanded; the component's redacted config (logged at start) hides
        it, and the tokens list.
        """
        text = (
            "consumers:\n  - type: SaveToWebSocket\n    config:\n      auth:\n"
            "        tokens: ['${WS_TOKEN}']\n        jwt_secret: '${WS_SECRET}'\n"
        )
        config = parse(text, "f.yaml", {"WS_TOKEN": "tok-from-env", "WS_SECRET": "sec-from-env"})
        consumer = config.pipelines[0].consumers[0]
        self.assertEqual(consumer.config["auth"]["tokens"], ["tok-from-env"])
        shown = json.dumps(consumer.redacted())
        self.assertNotIn("tok-from-env", shown)
        self.assertNotIn("sec-from-env", shown)


class AuthE2ETests(E2EMixin, TestCase):
    """
    Over real sockets, with auth on: exact statuses, and no welcome without a valid token.
    """

    timeout = 30

    def setUp(self):
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def start(self, **auth):
        auth.setdefault("tokens", ["good-token"])
        auth.setdefault("jwt_secret", SECRET)
        return self.startServer(auth=auth)

    @defer.inlineCallbacks
    def test_refusedStatuses(self):
        yield self.start(jwt_audience="sf")
        now = time.time()
        cases = [
            ([], "authentication required: send Authorization: Bearer <token> or ?access_token="),
            (["Authorization: Bearer tok-Zq81wq"], "invalid token"),
            (["Authorization: Basic Zm9vOmJhcg=="], "unsupported Authorization scheme; use Bearer"),
            (["Authorization: Bearer " + eh.hsToken(SECRET, aud="sf", exp=now - 1)], "token expired"),
            (["Authorization: Bearer " + eh.hsToken(SECRET, aud="sf", nbf=now + 60)], "token not yet valid"),
            (["Authorization: Bearer " + eh.hsToken(SECRET, aud="other")], "invalid token: wrong audience"),
            (["Authorization: Bearer " + eh.hsToken("x" * 40, aud="sf")], "invalid token: bad signature"),
        ]
        for headers, reason in cases:
            code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest(headers=headers))
            self.assertEqual((code, eh.reasonPhrase(data)), (401, reason), headers)
            self.assertEqual(eh.header(data, "WWW-Authenticate"), "Bearer")
            self.assertNotIn(b"welcome", data)
        code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest(path="/ws?access_token=tok-Kx72pp"))
        self.assertEqual((code, eh.reasonPhrase(data)), (401, "invalid token"))
        stats = self.consumer.stats()
        self.assertEqual(stats["auth_refused_total"], len(cases) + 1)
        self.assertTrue(all(isinstance(v, (int, float)) for v in stats.values()))  # nothing for /metrics to leak
        self.assertNotIn("good-token", repr(vars(self.consumer.authenticator)))
        self.assertEqual(stats["connections_total"], 0)
        # no token, no secret in the log
        text = json.dumps([str(e.get("log_format")) + repr(sorted(map(str, e.values()))) for e in self.logged])
        self.assertNotIn("tok-Zq81wq", text)
        self.assertNotIn("tok-Kx72pp", text)
        self.assertNotIn("dropping connection", text)
        self.assertNotIn(SECRET, text)

    @defer.inlineCallbacks
    def test_acceptedByHeaderAndQuery(self):
        yield self.start()
        code, data, _ = yield eh.exchange(
            self.port, eh.upgradeRequest(headers=["Authorization: Bearer good-token"]), untilHeaders=True
        )
        self.assertEqual(code, 101)
        for url in ("/ws?access_token=good-token", "/ws?x=1&access_token=" + eh.hsToken(SECRET, sub="q")):
            code, data, _ = yield eh.exchange(self.port, eh.upgradeRequest(path=url), untilHeaders=True)
            self.assertEqual(code, 101, url)

    @defer.inlineCallbacks
    def test_autobahnClientWithHeaderGetsEvents(self):
        yield self.start()
        factory = WebSocketClientFactory(self.url, reactor=reactor, headers={"Authorization": "Bearer good-token"})
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        self.addCleanup(self.disconnect, [client])
        yield until(lambda: client.received)
        self.assertEqual(client.types(), ["welcome"])

    @defer.inlineCallbacks
    def test_tokenLimitsOverE2E(self):
        yield self.start()
        token = eh.hsToken(SECRET, stellarflow={"account_ids": [G1]})
        factory = WebSocketClientFactory(self.url + "?access_token=" + token, reactor=reactor)
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        self.addCleanup(self.disconnect, [client])
        yield until(lambda: client.received)
        client.send({"type": "register", "filters": {"account_ids": [G2]}})
        yield client.waitFor(lambda c: c.errors())
        self.assertEqual(client.errors(), ["filter_not_allowed"])
        yield self.register(client, {"account_ids": [G1]})

    @defer.inlineCallbacks
    def test_expiryClosesOpenConnection(self):
        """
        A client whose token expires while connected gets error token_expired and close 4401
        at its exp.
        """
        yield self.start()
        exp = int(time.time()) + 2
        factory = WebSocketClientFactory(self.url, reactor=reactor,
                                         headers={"Authorization": "Bearer " + eh.hsToken(SECRET, exp=exp)})
        factory.protocol = Client
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        self.addCleanup(self.disconnect, [client])
        yield until(lambda: client.received)
        yield self.register(client)
        wasClean, code, reason = yield client.closedDeferred.addTimeout(10, reactor)
        self.assertGreaterEqual(time.time(), exp - 0.05)
        self.assertEqual((code, reason), (4401, "token expired"))
        self.assertEqual(client.errors(), ["token_expired"])
        self.assertEqual(self.consumer.stats()["tokens_expired_total"], 1)


class AuthOffTests(E2EMixin, TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_offByDefault(self):
        """
        Without auth: no token needed, and a token sent anyway is ignored.
        """
        yield self.startServer()
        self.assertIsNone(self.consumer.authenticator)
        client = yield self.connect()
        self.assertEqual(client.types(), ["welcome"])
        code, _, _ = yield eh.exchange(self.port, eh.upgradeRequest(headers=["Authorization: Bearer x"]),
                                       untilHeaders=True)
        self.assertEqual(code, 101)
