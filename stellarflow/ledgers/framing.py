"""
The frames between the parent and its ledger workers: a small JSON head and a binary body.

A frame is C{u32 size || u32 head size || head (JSON, UTF-8) || body}, sizes big-endian.  The
body carries what is large and already bytes (a ledger's XDR one way, its messages' encoded JSON
the other), so nothing is re-encoded to cross the pipe: no base64, no pickling, no 64 KiB value
limit (AMP's).  L{FrameReader} cuts a byte stream into C{(head, body)} pairs on either side.
"""

import json
import struct

_SIZES = struct.Struct(">II")

#: The largest frame either side accepts (a 1.8 MB Soroban-heavy ledger's XDR is far below it).
MAX_FRAME = 256 * 1024 * 1024


class FrameError(ValueError):
    """
    The stream is not a sequence of frames (a worker wrote something else on its stdout).
    """


def frame(head, body=b""):
    """
    The bytes of one frame: C{head} (a JSON-serialisable mapping) and C{body} (bytes).
    """
    encoded = json.dumps(head, separators=(",", ":")).encode("utf-8")
    return _SIZES.pack(4 + len(encoded) + len(body), len(encoded)) + encoded + body


class FrameReader:
    """
    Accumulates bytes and returns the complete frames in them.
    """

    def __init__(self, maxFrame=MAX_FRAME):
        self.maxFrame = maxFrame
        self._buffer = bytearray()

    def feed(self, data):
        """
        Add C{data}; return the C{(head, body)} of every frame now complete, in order.

        @raise FrameError: a frame is larger than C{maxFrame} or its head is not JSON.
        """
        buffer = self._buffer
        buffer += data
        frames = []
        while len(buffer) >= 8:
            size, headSize = _SIZES.unpack_from(buffer, 0)
            if size > self.maxFrame or headSize > size - 4:
                raise FrameError("a frame of {} bytes (head {}) is not acceptable".format(size, headSize))
            if len(buffer) < 4 + size:
                break
            try:
                head = json.loads(bytes(buffer[8 : 8 + headSize]))
            except ValueError as e:
                raise FrameError("a frame head is not JSON: {}".format(e)) from None
            body = bytes(buffer[8 + headSize : 4 + size])
            del buffer[: 4 + size]
            frames.append((head, body))
        return frames

    def __len__(self):
        return len(self._buffer)


def readFrame(stream):
    """
    Read one frame from a blocking binary C{stream} (the worker's stdin): C{(head, body)}, or
    C{None} at the end of the stream.
    """
    sizes = _readExactly(stream, 8)
    if sizes is None:
        return None
    size, headSize = _SIZES.unpack(sizes)
    if size > MAX_FRAME or headSize > size - 4:
        raise FrameError("a frame of {} bytes (head {}) is not acceptable".format(size, headSize))
    rest = _readExactly(stream, size - 4)
    if rest is None:
        raise FrameError("the stream ended inside a frame")
    return json.loads(rest[:headSize]), rest[headSize:]


def _readExactly(stream, count):
    chunks = []
    missing = count
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            if missing == count:
                return None
            raise FrameError("the stream ended inside a frame")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
