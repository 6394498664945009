"""
Checks of the HTTP upgrade request made before Autobahn's own, where a plain 400 would not tell
a person what to send.

The streaming guide's troubleshooting C{curl} line sends C{Sec-WebSocket-Key:
SGVsbG8sIHdvcmxkIQ==}, the base64 of 13 bytes; RFC 6455 (4.1) requires 16.  Autobahn refuses it
with a bare status line.  L{keyProblem} finds that case in the request head, and L{keyRefusal}
is a 400 answer whose body says exactly what to send, with a working C{curl} line.
"""

import base64
import binascii
import re

__all__ = ["keyProblem", "keyRefusal"]

_HEADER = re.compile(rb"^sec-websocket-key[ \t]*:[ \t]*(.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_HOST = re.compile(rb"^host[ \t]*:[ \t]*([A-Za-z0-9.:\[\]-]{1,255})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_BASE64 = re.compile(rb"^[A-Za-z0-9+/]{0,200}={0,2}$")

#: The RFC 6455 example key, 16 bytes in base64.
EXAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def keyProblem(head):
    """
    What is wrong with the C{Sec-WebSocket-Key} of a request head (the bytes up to the blank
    line), as text naming the key, or C{None} when it is absent (Autobahn answers that) or
    valid (16 bytes in base64).
    """
    found = _HEADER.search(head)
    if found is None:
        return None
    key = found.group(1).rstrip(b"\r")
    if not _BASE64.match(key):
        return "got a value that is not base64"
    try:
        decoded = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "got {!r}, which is not valid base64".format(key.decode("ascii"))
    if len(decoded) == 16:
        return None
    return "got {!r}, which is {} byte{}".format(
        key.decode("ascii"), len(decoded), "" if len(decoded) == 1 else "s"
    )


def keyRefusal(head, path, problem):
    """
    The bytes of an HTTP 400 answer for a bad key: a one-line reason and a plain-text body with
    what to send and a C{curl} line for this server's C{path}.
    """
    host = _HOST.search(head)
    host = host.group(1).decode("ascii") if host else "localhost:8080"
    body = (
        "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters ending in '==', "
        "e.g. {example}); {problem}.\n"
        "A working request:\n"
        "  curl -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
        "-H 'Sec-WebSocket-Version: 13' -H \"Sec-WebSocket-Key: $(head -c 16 /dev/urandom | base64)\" "
        "http://{host}{path}\n"
    ).format(example=EXAMPLE_KEY, problem=problem, host=host, path=path)
    body = body.encode("utf-8")
    return (
        b"HTTP/1.1 400 Bad Sec-WebSocket-Key\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
