"""
Real recorded getEvents answers, replayed by the test Stellar RPC server.

The caller loads them from wherever they live (e.g. the shared fixtures, in place).
"""

import json

from stellarflow.testing.getevents import INTERNAL_ERROR, RPCError


class RecordedPages:
    """
    Real recorded getEvents answers, served in order for successive getEvents calls.

    Each page is a getEvents C{result} object, or a whole JSON-RPC response (C{result} or
    C{error}).  Once all are served, every call gets an empty page carrying the last page's
    cursor and ledger fields.
    """

    def __init__(self, pages):
        self._pages = [self._normalise(p) for p in pages]
        self.served = 0
        self._last = None

    @classmethod
    def fromFiles(cls, paths):
        """
        The pages in the JSON files at C{paths}, in that order.
        """
        pages = []
        for path in paths:
            with open(path, "rb") as f:
                pages.append(json.load(f))
        return cls(pages)

    @staticmethod
    def _normalise(page):
        if not isinstance(page, dict):
            raise ValueError("a recorded page must be a JSON object")
        if "jsonrpc" in page and ("result" in page or "error" in page):
            return page
        return {"result": page}

    def _peek(self):
        if self.served < len(self._pages):
            return self._pages[self.served]
        return None

    def nextResult(self):
        """
        The next result object; raise L{RPCError} for a recorded error.
        """
        page = self._peek()
        if page is None:
            return self._empty()
        self.served += 1
        if "error" in page:
            err = page["error"]
            raise RPCError(err.get("code", INTERNAL_ERROR), err.get("message", ""))
        self._last = page["result"]
        return self._last

    def _empty(self):
        result = {"events": []}
        if self._last is not None:
            for k, v in self._last.items():
                if k != "events":
                    result[k] = v
        return result

    def ledgers(self):
        """
        C{(latest, oldest, latest close time, oldest close time)} to report outside getEvents.
        """
        source = self._last
        if source is None:
            for page in self._pages:
                if "result" in page:
                    source = page["result"]
                    break
        source = source or {}

        def num(key):
            try:
                return int(source.get(key, 0))
            except (TypeError, ValueError):
                return 0

        return (num("latestLedger"), num("oldestLedger"),
                num("latestLedgerCloseTime"), num("oldestLedgerCloseTime"))
