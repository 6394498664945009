"""
Whole ledgers as a source: Stellar RPC ``getLedgers`` (L{source}) and the Stellar data lake
(L{lake}, L{lakesource}), decoded off the reactor in worker processes (L{pool}, L{worker},
L{framing}) by the L{processor} ``GetLedgersRPC``.  L{header} reads the few header fields the
parent needs straight from the XDR bytes; L{chain} checks that ledgers follow one another.
"""
