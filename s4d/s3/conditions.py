"""The condition keys of a request, as bucket policies ask for them.

:class:`RequestContext` answers a policy's ``Condition`` keys from what the
request carries when its headers are in: ``aws:SourceIp`` (the address of the
TCP peer: no forwarded header is believed), ``aws:SecureTransport``,
``aws:CurrentTime`` and ``aws:EpochTime``, ``aws:username`` and
``aws:userid``, ``aws:Referer``, ``aws:UserAgent``, ``s3:prefix``,
``s3:delimiter``, ``s3:max-keys``, ``s3:VersionId``, ``s3:x-amz-acl`` and the
other ``s3:x-amz-*`` headers policies name, ``s3:RequestObjectTag/<key>`` and
``s3:RequestObjectTagKeys`` (from ``x-amz-tagging``), and
``s3:ExistingObjectTag/<key>``, read lazily (only when a statement asks) by
the ``existing_tags`` callable. Values are computed when first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from s4d.auth.principal import Principal
from s4d.s3.headers import CallHeaders

#: Request headers a policy may name as ``s3:<header>``.
HEADER_KEYS = frozenset(
    {"x-amz-acl", "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-storage-class",
     "x-amz-server-side-encryption", "x-amz-grant-read", "x-amz-grant-write",
     "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control",
     "x-amz-object-ownership", "x-amz-content-sha256"}
)  # fmt: skip
#: Query parameters a policy may name as ``s3:<parameter>``.
PARAM_KEYS = {"s3:prefix": "prefix", "s3:delimiter": "delimiter", "s3:max-keys": "max-keys"}


class RequestContext:
    """The condition keys of one request (a :class:`~s4d.auth.policy.ConditionContext`)."""

    def __init__(
        self,
        *,
        source_ip: str,
        secure: bool,
        now: datetime,
        principal: Principal | None,
        headers: CallHeaders,
        params: Mapping[str, str],
        existing_tags: Callable[[], Mapping[str, str] | None] = lambda: None,
    ) -> None:
        self.source_ip = source_ip
        self.secure = secure
        self.now = now
        self.principal = principal
        self.headers = headers
        self.params = params
        self.existing_tags = existing_tags
        self._existing: Mapping[str, str] | None = None
        self._existing_read = False
        self._request_tags: dict[str, str] | None = None

    def get(self, key: str) -> Sequence[str] | None:
        """The values of condition key ``key`` (case-insensitive), or None."""
        lowered = key.lower()
        if lowered == "aws:sourceip":
            return [self.source_ip] if self.source_ip else None
        if lowered == "aws:securetransport":
            return ["true" if self.secure else "false"]
        if lowered == "aws:currenttime":
            return [self.now.strftime("%Y-%m-%dT%H:%M:%SZ")]
        if lowered == "aws:epochtime":
            return [str(int(self.now.timestamp()))]
        if lowered in ("aws:username", "aws:userid"):
            if self.principal is None:
                return None
            return [
                self.principal.username if lowered == "aws:username" else self.principal.user_id
            ]
        if lowered == "aws:referer":
            return self._header("referer")
        if lowered == "aws:useragent":
            return self._header("user-agent")
        param = PARAM_KEYS.get(lowered)
        if param is not None:
            value = self.params.get(param)
            return [value] if value is not None else None
        if lowered == "s3:versionid":
            version = self.params.get("versionId")
            return [version] if version is not None else None
        if lowered.startswith("s3:requestobjecttag/"):
            value = self._tags_of_request().get(key[len("s3:RequestObjectTag/") :])
            return [value] if value is not None else None
        if lowered == "s3:requestobjecttagkeys":
            keys = list(self._tags_of_request())
            return keys or None
        if lowered.startswith("s3:existingobjecttag/"):
            value = self._existing_object_tags().get(key[len("s3:ExistingObjectTag/") :])
            return [value] if value is not None else None
        if lowered.startswith("s3:") and lowered[3:] in HEADER_KEYS:
            return self._header(lowered[3:])
        return None

    def _header(self, name: str) -> Sequence[str] | None:
        value = self.headers.get(name)
        return [value] if value is not None else None

    def _tags_of_request(self) -> dict[str, str]:
        if self._request_tags is None:
            raw = self.headers.get("x-amz-tagging") or ""
            try:
                self._request_tags = dict(parse_qsl(raw, keep_blank_values=True))
            except ValueError:
                self._request_tags = {}
        return self._request_tags

    def _existing_object_tags(self) -> Mapping[str, str]:
        if not self._existing_read:
            self._existing = self.existing_tags()
            self._existing_read = True
        return self._existing or {}
