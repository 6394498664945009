"""
The dashboard's files as a twisted.web resource: the page at C{dashboard_path}, its script,
style sheet and the standalone client beside it (C{client.js}).

The files are package data, read once when the resource is built.  The page learns where the
WebSocket is (its path on the same host and port) and which event types to offer before the
server says (C{available_types} of the C{registered} reply) from a JSON block written into
C{index.html} here, so the files themselves stay static and cacheable by nobody but us.
"""

import json
from importlib import resources

from twisted.web.resource import Resource

from stellarflow.websocket.filters import KNOWN_TYPES

#: The files served, by name under the dashboard path, with their media types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "client.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

#: Where index.html takes its settings (an inert JSON block, allowed by the page's CSP).
PLACEHOLDER = "__STELLARFLOW_DASHBOARD_CONFIG__"

#: No inline script, no third-party origin: the page loads only its own files.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def staticFile(name):
    """
    The bytes of one of the page's files (package data).
    """
    return resources.files("stellarflow.dashboard").joinpath("static", name).read_bytes()


def pageSettings(wsPath, knownTypes=KNOWN_TYPES):
    """
    The JSON the page reads from its config block: the WebSocket path and the known types.
    C{</} is escaped so that no value can end the script element early.
    """
    text = json.dumps({"ws_path": wsPath, "known_types": sorted(knownTypes)}, sort_keys=True)
    return text.replace("</", "<\\/")


def normalisePath(path):
    """
    A dashboard path as a directory: C{"/"}, C{"/dashboard/"} (a trailing C{/} added).
    """
    return path if path.endswith("/") else path + "/"


class DashboardResource(Resource):
    """
    Serves the page's files under C{prefix} (GET and HEAD; other methods get 405); any other
    path, and any WebSocket upgrade (the WebSocket is at its own path only), gets 404.  The prefix without its trailing slash redirects to it, so that the page's
    relative URLs resolve.
    """

    isLeaf = True

    def __init__(self, wsPath, prefix="/", knownTypes=KNOWN_TYPES):
        Resource.__init__(self)
        self.prefix = normalisePath(prefix)
        self.files = {}
        for name, mediaType in FILES.items():
            body = staticFile(name)
            if name == "index.html":
                body = body.replace(PLACEHOLDER.encode("ascii"), pageSettings(wsPath, knownTypes).encode("utf-8"))
            self.files[(self.prefix + name).encode("utf-8")] = (mediaType.encode("ascii"), body)
        self.files[self.prefix.encode("utf-8")] = self.files[(self.prefix + "index.html").encode("utf-8")]

    def render_GET(self, request):
        path = request.path
        found = self.files.get(path)
        upgrade = (request.getHeader(b"upgrade") or b"").lower() == b"websocket"
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if found is None or upgrade:
            if not upgrade and len(self.prefix) > 1 and path == self.prefix[:-1].encode("utf-8"):
                request.setResponseCode(301)
                request.setHeader(b"Location", self.prefix.encode("utf-8"))
                return b""
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Not Found\n"
        mediaType, body = found
        request.setHeader(b"Content-Type", mediaType)
        # revalidate each time: the files change with the daemon's version.
        request.setHeader(b"Cache-Control", b"no-cache")
        if mediaType.startswith(b"text/html"):
            request.setHeader(b"Content-Security-Policy", CSP.encode("ascii"))
            request.setHeader(b"Referrer-Policy", b"no-referrer")
        return body
