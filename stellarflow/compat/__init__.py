"""
The private internals of the libraries stellarflow builds on, fenced in: one small module per
library (Twisted, Autobahn, txpostgres).  Nothing else in the package touches a library's
private names; each module has a test that fails loudly when an installed version no longer
has what it relies on.
"""
