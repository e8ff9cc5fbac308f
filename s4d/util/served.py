"""The record of one answered request: made by the HTTP seam, read by metrics and the access log.

The S3 site (:mod:`s4d.s3.request`) hands a :class:`ServedRequest` to its
:class:`RequestObserver` once per request, when the response is finished (or
refused early, or abandoned by the client); the ops surfaces
(:mod:`s4d.admin.figures`, :mod:`s4d.admin.access_log`) count and log it. The
record lives here, below both, so that neither imports the other.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

#: The status recorded for a request whose client went away before the response
#: was finished (as nginx logs it): no response status was ever sent.
CLIENT_CLOSED = 499


class ServedRequest(NamedTuple):
    """One request, as answered.

    :ivar request_id: its ``x-amz-request-id``.
    :ivar method: the HTTP method.
    :ivar operation: the S3 operation (``GetObject``); ``Rejected`` for a request
        refused before its operation was known; empty for a request the ops
        app answered (health, metrics, admin API: see :attr:`path`).
    :ivar path: the raw request path.
    :ivar bucket: the bucket named (empty if none or unknown).
    :ivar key: the object key named (empty if none).
    :ivar identity: who made it: the access key id of a signed S3 request, or
        what the admin API's guard found; None when anonymous or unknown.
    :ivar peer: the client's address.
    :ivar status: the response status (:data:`CLIENT_CLOSED` if none was finished).
    :ivar bytes_in: request body bytes received.
    :ivar bytes_out: response body bytes sent.
    :ivar started: when its first byte arrived (seconds since the epoch).
    :ivar seconds: how long it took, to the end of the response.
    """

    request_id: str
    method: str
    operation: str
    path: bytes
    bucket: str
    key: str
    identity: str | None
    peer: str
    status: int
    bytes_in: int
    bytes_out: int
    started: float
    seconds: float


class RequestObserver(Protocol):
    """Told about every request once it is answered; must be quick (it runs on the reactor)."""

    def served(self, request: ServedRequest) -> None:
        """Take note of one answered request."""
