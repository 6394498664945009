"""
Client authentication for the WebSocket server, checked during the HTTP upgrade.

Optional and off unless C{auth:} configures tokens or a JWT key.  A client presents its token
in an C{Authorization: Bearer <token>} header or an C{access_token} query parameter (browsers
cannot set headers on a WebSocket).  Two kinds are accepted:

  - static tokens (C{tokens}, C{tokens_file}): kept only as SHA-256 digests and compared with
    L{hmac.compare_digest} against every digest, so neither the tokens nor the time a
    comparison takes tell anything;
  - signed JWTs (C{jwt_secret} for HS256, C{jwt_public_key_file} for RS256 or ES256, chosen by
    the key's type), verified with PyJWT; C{exp} and C{nbf} are checked against the injected
    clock, C{aud} against C{jwt_audience} when set.  A JWT may carry a C{stellarflow} claim
    with limits that override the server's (L{Grant}).

L{Authenticator.authenticate} returns a L{Grant} or raises L{AuthError}, whose message is the
one-line reason of the HTTP 401.  No token or secret is ever logged or kept in clear.
"""

import hashlib
import hmac

import attr
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from stellarflow.schema import Field, ListOf, Number, Schema, String, join

__all__ = ["AuthError", "Authenticator", "Grant", "OPEN", "authSchema", "bearerToken"]

#: The JWT claim holding a client's limits.
LIMITS_CLAIM = "stellarflow"
#: Longest token looked at (a longer one is refused without hashing or decoding it).
MAX_TOKEN_LENGTH = 8192


class AuthError(Exception):
    """
    The client may not connect; C{str(error)} is the one-line reason sent with the HTTP 401.
    """


@attr.s(frozen=True, slots=True)
class Grant:
    """
    What an authenticated client may do.

    @ivar subject: who it is (a JWT's C{sub}), for logs; never the token.
    @ivar expiresAt: POSIX time its token expires (JWT C{exp}), or C{None}.
    @ivar maxFilterEntries: its own limit on filter entries, or C{None} for the server's.
    @ivar types: the event types it may ask for (a frozenset), or C{None}: any.
    @ivar accountIds: the accounts it may ask for (a frozenset), or C{None}: any.
    """

    subject = attr.ib(default=None)
    expiresAt = attr.ib(default=None)
    maxFilterEntries = attr.ib(default=None)
    types = attr.ib(default=None)
    accountIds = attr.ib(default=None)


#: The grant of a client when authentication is off, or of a static token: no own limits.
OPEN = Grant()


def _file(value):
    """
    Validator: empty, or a file that can be read.
    """
    if not value:
        return None
    try:
        with open(value, "rb"):
            return None
    except OSError as e:
        return "a readable file ({})".format(e.strerror or e)


authSchema = Schema(
    {
        "tokens": Field(
            ListOf(String(nonEmpty=True, secret=True)), [], "static bearer tokens accepted (${VAR} allowed)"
        ),
        "tokens_file": Field(
            String(validator=_file), "", "file of static tokens, one per line (# comments, blank lines ignored)"
        ),
        "jwt_secret": Field(String(secret=True), "", "HS256 key: JWTs signed with it are accepted"),
        "jwt_public_key_file": Field(
            String(validator=_file), "", "PEM public key (RSA: RS256, EC P-256: ES256) JWTs are verified with"
        ),
        "jwt_audience": Field(String(), "", "the aud a JWT must carry (empty: aud not checked)"),
        "jwt_issuer": Field(String(), "", "the iss a JWT must carry (empty: iss not checked)"),
        "jwt_leeway": Field(Number(0), 0, "seconds of clock skew allowed on exp and nbf"),
    },
    check=lambda config, path, problems: checkAuth(config, path, problems),
)


def checkAuth(config, path, problems):
    """
    Cross-field checks: a public key file must hold an RSA or EC P-256 key.
    """
    keyFile = config.get("jwt_public_key_file")
    if keyFile:
        try:
            _publicKey(keyFile)
        except (OSError, ValueError) as e:
            problems.add(join(path, "jwt_public_key_file"), "expected a PEM RSA or EC P-256 public key: {}".format(e))


def _publicKey(path):
    """
    C{(key, algorithm)} from a PEM public key file.
    """
    with open(path, "rb") as f:
        key = load_pem_public_key(f.read())
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    raise ValueError("not an RSA or EC P-256 key")


def readTokens(path):
    """
    The tokens of a C{tokens_file}: one per line, surrounding spaces stripped, blank lines and
    lines starting with C{#} ignored.
    """
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def _digest(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearerToken(headers, params):
    """
    The token a request presents: the C{Authorization: Bearer} header's, else the first
    C{access_token} query parameter's, else C{None}.

    @param headers: the request's headers, names in lower case (Autobahn's C{request.headers}).
    @param params: its query parameters, each name to a list of values (C{request.params}).
    @raise AuthError: an C{Authorization} header of another scheme, or an empty token.
    """
    header = headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("unsupported Authorization scheme; use Bearer")
        token = token.strip()
        if not token:
            raise AuthError("empty bearer token")
        return token
    values = params.get("access_token")
    if values:
        if not values[0]:
            raise AuthError("empty access_token")
        return values[0]
    return None


class Authenticator:
    """
    Checks the tokens of upgrade requests.

    @param clock: an L{IReactorTime}: JWT C{exp}/C{nbf} are checked against its time.
    @param tokens: static tokens (clear text; only their digests are kept).
    @param tokens_file: a file of more static tokens (read once, here).
    @param jwt_secret: the HS256 key, or C{""}.
    @param jwt_public_key_file: an RSA or EC P-256 PEM public key file, or C{""}.
    @param jwt_audience: the required C{aud}, or C{""}.
    @param jwt_issuer: the required C{iss}, or C{""}.
    @param jwt_leeway: seconds of skew allowed on C{exp} and C{nbf}.
    """

    def __init__(
        self,
        clock,
        tokens=(),
        tokens_file="",
        jwt_secret="",
        jwt_public_key_file="",
        jwt_audience="",
        jwt_issuer="",
        jwt_leeway=0,
    ):
        self.clock = clock
        clear = list(tokens)
        if tokens_file:
            clear.extend(readTokens(tokens_file))
        self._digests = tuple({_digest(t) for t in clear})
        self._keys = []
        if jwt_secret:
            self._keys.append((jwt_secret.encode("utf-8"), "HS256"))
        if jwt_public_key_file:
            self._keys.append(_publicKey(jwt_public_key_file))
        self.audience = jwt_audience or None
        self.issuer = jwt_issuer or None
        self.leeway = float(jwt_leeway or 0)

    @classmethod
    def fromConfig(cls, clock, config):
        """
        The authenticator for an C{auth:} mapping, or C{None} when it configures nothing (auth off).
        """
        config = dict(config or {})
        if not (config.get("tokens") or config.get("tokens_file") or config.get("jwt_secret")
                or config.get("jwt_public_key_file")):
            return None
        return cls(clock, **config)

    @property
    def kinds(self):
        """
        What it accepts, for the start-up log line: C{"2 static tokens, JWT (HS256)"}.
        """
        parts = []
        if self._digests:
            parts.append("{} static token(s)".format(len(self._digests)))
        if self._keys:
            parts.append("JWT ({})".format(", ".join(alg for _, alg in self._keys)))
        return ", ".join(parts)

    def authenticate(self, headers, params):
        """
        The L{Grant} of a request's token.

        @raise AuthError: no token, or a token that is not accepted (expired, bad signature...).
        """
        token = bearerToken(headers, params)
        if token is None:
            raise AuthError("authentication required: send Authorization: Bearer <token> or ?access_token=")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("token too long")
        if self._digests and self._isStatic(token):
            return OPEN
        if self._keys and token.count(".") == 2:
            return self._verifyJWT(token)
        raise AuthError("invalid token")

    def _isStatic(self, token):
        digest = _digest(token)
        found = False
        for known in self._digests:  # every one, so the time taken does not depend on which
            found |= hmac.compare_digest(digest, known)
        return found

    def _verifyJWT(self, token):
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        algorithm = header.get("alg")
        keys = [key for key, alg in self._keys if alg == algorithm]
        if not keys:
            raise AuthError("invalid token: algorithm not accepted")
        options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": self.audience is not None}
        claims = None
        for key in keys:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer, options=options
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                raise AuthError("invalid token: wrong audience") from None
            except jwt.InvalidIssuerError:
                raise AuthError("invalid token: wrong issuer") from None
            except jwt.MissingRequiredClaimError as e:
                raise AuthError("invalid token: no {} claim".format(e.claim)) from None
            except (jwt.InvalidTokenError, ValueError, TypeError):
                raise AuthError("invalid token") from None
        if claims is None:
            raise AuthError("invalid token: bad signature")
        return self._grant(claims)

    def _grant(self, claims):
        now = self.clock.seconds()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        for name, value in (("exp", exp), ("nbf", nbf)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise AuthError("invalid token: {} is not a number".format(name))
        if exp is not None and now >= exp + self.leeway:
            raise AuthError("token expired")
        if nbf is not None and now < nbf - self.leeway:
            raise AuthError("token not yet valid")
        limits = claims.get(LIMITS_CLAIM) or {}
        if not isinstance(limits, dict):
            raise AuthError("invalid token: the {} claim must be an object".format(LIMITS_CLAIM))
        subject = claims.get("sub")
        return Grant(
            subject=subject[:100] if isinstance(subject, str) else None,
            expiresAt=None if exp is None else exp + self.leeway,
            maxFilterEntries=_claimInt(limits, "max_filter_entries"),
            types=_claimSet(limits, "types"),
            accountIds=_claimSet(limits, "account_ids"),
        )


def _claimInt(limits, name):
    value = limits.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AuthError("invalid token: {}.{} must be a whole number >= 0".format(LIMITS_CLAIM, name))
    return value


def _claimSet(limits, name):
    value = limits.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AuthError("invalid token: {}.{} must be a list of strings".format(LIMITS_CLAIM, name))
    return frozenset(value)
