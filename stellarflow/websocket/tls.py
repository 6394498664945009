"""
TLS for the WebSocket listener (C{wss://}): certificate chain and key from PEM files.
"""

from OpenSSL import crypto
from twisted.internet.ssl import CertificateOptions


class TLSConfigError(ValueError):
    """
    The certificate or key cannot be used; the message says which file and why.
    """


def _pemBlocks(data, marker):
    blocks, rest = [], data
    begin, end = b"-----BEGIN " + marker, b"-----END " + marker
    while begin in rest:
        start = rest.index(begin)
        stop = rest.index(end, start)
        stop = rest.index(b"-----", stop + len(end)) + 5
        blocks.append(rest[start:stop])
        rest = rest[stop:]
    return blocks


def serverOptions(certificatePath, keyPath):
    """
    A context factory for a TLS server: the first certificate in C{certificatePath} is the
    server's, any following ones its chain; C{keyPath} holds its private key.
    """
    try:
        with open(certificatePath, "rb") as f:
            certData = f.read()
    except OSError as e:
        raise TLSConfigError("cannot read tls_certificate {}: {}".format(certificatePath, e.strerror))
    try:
        with open(keyPath, "rb") as f:
            keyData = f.read()
    except OSError as e:
        raise TLSConfigError("cannot read tls_key {}: {}".format(keyPath, e.strerror))
    blocks = _pemBlocks(certData, b"CERTIFICATE")
    if not blocks:
        raise TLSConfigError("tls_certificate {} holds no PEM certificate".format(certificatePath))
    try:
        certificates = [crypto.load_certificate(crypto.FILETYPE_PEM, b) for b in blocks]
    except crypto.Error as e:
        raise TLSConfigError("tls_certificate {} is not a valid certificate: {}".format(certificatePath, e))
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, keyData)
    except crypto.Error:
        raise TLSConfigError("tls_key {} is not a valid (unencrypted) PEM private key".format(keyPath))
    options = CertificateOptions(privateKey=key, certificate=certificates[0], extraCertChain=certificates[1:])
    try:
        options.getContext()
    except Exception as e:
        raise TLSConfigError(
            "tls_key {} does not match tls_certificate {}: {}".format(keyPath, certificatePath, e)
        )
    return options
