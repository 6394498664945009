"""
The registered clients' filters, indexed so that an event only visits the clients it may match.

L{FilterIndex.match} must give exactly what L{stellarflow.websocket.matching.matches} gives
client by client (the tests compare them); it only avoids visiting clients that cannot match,
so that its cost does not grow with them.
"""

import attr

from stellarflow.websocket.filters import KNOWN_TYPES, TWO_PARTY_TRANSFER
from stellarflow.websocket.matching import matches

__all__ = ["FilterIndex"]


@attr.s(slots=True, eq=False, weakref_slot=False)
class _Entry:
    """
    A filed client.

    @ivar filters: its L{Filters}.
    @ivar seq: its add order.
    @ivar rest: whether fields besides the primary one still need L{matches}.
    @ivar places: the C{(table, key)} buckets holding it (C{(None, None)}: unconstrained).
    """

    filters = attr.ib()
    seq = attr.ib()
    rest = attr.ib(default=False)
    places = attr.ib(default=attr.Factory(list))


class FilterIndex:
    """
    Clients' filters indexed so that an event only visits candidate clients.

    Each client is filed under one primary field, the most selective it constrains
    (account > asset > type > none): in one bucket per listed account / asset / known type key
    (its L{Filters.matchTypes}), or in the unconstrained set; an event selects the buckets of
    its accounts, of each of its sides' assets and of its type keys.  A client whose C{types} are all unknown is filed nowhere (it can
    never match).  L{match} visits the buckets the event's keys select plus the unconstrained
    set and runs L{matches} only for candidates that constrain more than their primary field,
    so its cost does not grow with clients that cannot match.  Results are in the order of the
    clients' latest L{add}, without duplicates.
    """

    def __init__(self):
        self._entries = {}
        self._seq = 0
        self._byAccount = {}
        self._byAsset = {}        # (code, issuer) and NATIVE -> bucket {client: _Entry}
        self._byCode = {}         # code (any issuer; never XLM) -> bucket
        self._byType = {}         # known type -> bucket
        self._unconstrained = {}  # bucket of clients with no account/asset/type filter

    def __len__(self):
        return len(self._entries)

    def __contains__(self, client):
        return client in self._entries

    def __iter__(self):
        """
        The clients, in order of their latest add.
        """
        return iter(list(self._entries))

    def filtersFor(self, client):
        """
        The client's filters, or C{None} when it is not in the index.
        """
        entry = self._entries.get(client)
        return None if entry is None else entry.filters

    def add(self, client, filters):
        """
        File C{client} under C{filters}; re-adding replaces (and moves it last).
        """
        if client in self._entries:
            self.remove(client)
        self._seq += 1
        entry = _Entry(filters, self._seq)
        self._entries[client] = entry
        amount = filters.min_amount is not None
        if filters.account_ids:
            entry.rest = bool(filters.types or filters.asset_codes or amount)
            for account in filters.account_ids:
                self._file(entry, client, self._byAccount, account)
        elif filters.asset_codes:
            entry.rest = bool(filters.types or amount)
            for code, issuer in filters.asset_codes:
                if issuer is None and code != "XLM":
                    self._file(entry, client, self._byCode, code)
                else:
                    self._file(entry, client, self._byAsset, (code, issuer))
        elif filters.types:
            entry.rest = amount
            for name in filters.matchTypes:
                if name in KNOWN_TYPES or name == TWO_PARTY_TRANSFER:
                    self._file(entry, client, self._byType, name)
        else:
            entry.rest = amount
            self._unconstrained[client] = entry
            entry.places.append((None, None))

    @staticmethod
    def _file(entry, client, table, key):
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = {}
        bucket[client] = entry
        entry.places.append((table, key))

    def remove(self, client):
        """
        Forget C{client}; unknown clients are ignored.
        """
        entry = self._entries.pop(client, None)
        if entry is None:
            return
        for table, key in entry.places:
            if table is None:
                del self._unconstrained[client]
                continue
            bucket = table[key]
            del bucket[client]
            if not bucket:
                del table[key]

    def _buckets(self, keys):
        """
        The non-empty account/asset/type buckets an event with these keys selects.
        """
        buckets = []
        if self._byAccount:
            byAccount = self._byAccount
            for account in keys.accounts:
                bucket = byAccount.get(account)
                if bucket:
                    buckets.append(bucket)
        for asset, _ in keys.sides:
            bucket = self._byAsset.get(asset)
            if bucket:
                buckets.append(bucket)
            code, issuer = asset
            if issuer is not None and code != "XLM":
                bucket = self._byCode.get(code)
                if bucket:
                    buckets.append(bucket)
        if self._byType:
            byType = self._byType
            for name in keys.types:
                bucket = byType.get(name)
                if bucket:
                    buckets.append(bucket)
        return buckets

    def match(self, keys):
        """
        The clients whose filters pass an event with these L{EventKeys} (a new list).
        """
        buckets = self._buckets(keys)
        unconstrained = self._unconstrained
        if not buckets:
            return [client for client, e in unconstrained.items()
                    if not e.rest or matches(e.filters, keys)]
        if len(buckets) == 1 and not unconstrained:
            return [client for client, e in buckets[0].items()
                    if not e.rest or matches(e.filters, keys)]
        # A client listing several accounts/assets/types can sit in several buckets.
        hits = {}
        for bucket in buckets:
            for client, e in bucket.items():
                if client not in hits and (not e.rest or matches(e.filters, keys)):
                    hits[client] = e.seq
        if not unconstrained:
            return sorted(hits, key=hits.__getitem__)
        # Unconstrained clients are disjoint from the buckets' and already in add order.
        merged = [(e.seq, client) for client, e in unconstrained.items()
                  if not e.rest or matches(e.filters, keys)]
        if not hits:
            return [client for _, client in merged]
        merged.extend((seq, client) for client, seq in hits.items())
        merged.sort(key=_first)  # seqs are unique: clients are never compared
        return [client for _, client in merged]


def _first(pair):
    return pair[0]
