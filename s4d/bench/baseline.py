"""The baseline: a bare twisted.web server answering the benchmark's requests.

It does no authentication, hashing or storage beyond a dict in memory, so its
figures are the ceiling Twisted itself sets on this machine.
``python -m s4d.bench.baseline PORT``.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor
from twisted.web import resource, server

LIST_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bench</Name>'
    + b"".join(
        b"<Contents><Key>k%06d</Key><Size>4096</Size><ETag>&quot;x&quot;</ETag></Contents>" % i
        for i in range(1000)
    )
    + b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)


class Bare(resource.Resource):
    """Answers PUT/GET/HEAD/DELETE on any path from a dict."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.objects: dict[bytes, bytes] = {}

    def render_PUT(self, request: Any) -> bytes:
        data = request.content.read()
        if b"/" in request.path[1:]:
            self.objects[request.path] = data
        request.setHeader(b"ETag", b'"0"')
        return b""

    def render_GET(self, request: Any) -> bytes:
        if request.path.count(b"/") == 1:
            return LIST_BODY
        return self.objects.get(request.path, b"")

    def render_HEAD(self, request: Any) -> bytes:
        request.setHeader(b"Content-Length", b"%d" % len(self.objects.get(request.path, b"")))
        return b""

    def render_DELETE(self, request: Any) -> bytes:
        self.objects.pop(request.path, None)
        request.setResponseCode(204)
        return b""


def main() -> None:
    """Serve on the port given as the first argument."""
    port = int(sys.argv[1])
    site: Any = server.Site(Bare())  # type: ignore[no-untyped-call]
    reactor.listenTCP(port, site, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
