"""
Network names -> network passphrases.

The passphrase decides which contract id is the real Stellar Asset Contract of an asset, so a
typo must not silently become a passphrase: a value is a known name (case-insensitive) or looks
like a passphrase (has a space, as every Stellar passphrase does), else it is rejected.
"""

from stellar_sdk import Network

PUBLIC = Network.PUBLIC_NETWORK_PASSPHRASE
TESTNET = Network.TESTNET_NETWORK_PASSPHRASE
FUTURENET = Network.FUTURENET_NETWORK_PASSPHRASE
STANDALONE = Network.STANDALONE_NETWORK_PASSPHRASE

NAMES = {
    "mainnet": PUBLIC,
    "pubnet": PUBLIC,
    "public": PUBLIC,
    "testnet": TESTNET,
    "futurenet": FUTURENET,
    "standalone": STANDALONE,
    "local": STANDALONE,
}

DEFAULT = PUBLIC


def passphraseProblem(value):
    """
    Why C{value} is neither a network name nor a passphrase, or C{None} when it is fine (a
    validator for config schemas).
    """
    if not isinstance(value, str) or not value.strip():
        return "a network name ({}) or a network passphrase".format(", ".join(sorted(NAMES)))
    if value.strip().lower() in NAMES or " " in value.strip():
        return None
    return "a network name ({}) or a network passphrase".format(", ".join(sorted(NAMES)))


def networkPassphrase(value=None):
    """
    Return the passphrase for a network name (``mainnet``/``pubnet``/``public``, ``testnet``,
    ``futurenet``, ``standalone``/``local``) or a literal passphrase; C{None} means the public
    network.  Raise C{ValueError} for anything else.
    """
    if value is None:
        return DEFAULT
    problem = passphraseProblem(value)
    if problem is not None:
        raise ValueError("unknown network {!r}: expected {}".format(value, problem))
    return NAMES.get(value.strip().lower(), value)
