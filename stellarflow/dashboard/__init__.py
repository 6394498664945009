"""
The live dashboard: a page served on the WebSocket port beside the WebSocket, and the
operator's status page on the admin port.

  - C{static/}: the page's files, shipped as package data (hand-written: no build step, no CDN,
    no vendored library).  C{client.js} is also a standalone client (browser and Node):
    connect, register, reconnect with backoff and C{resume_after}, de-duplicate, report gaps.
  - L{stellarflow.dashboard.site}: the twisted.web resource serving those files.
  - L{stellarflow.dashboard.front}: one listening port for both, routing each connection by
    its request line (the WebSocket path to Autobahn, every other path to the page's site).
  - L{stellarflow.dashboard.status}: C{GET /} on the admin port, the data of C{/metrics} and
    C{/healthz} for a person.

See docs/dashboard.md.
"""
