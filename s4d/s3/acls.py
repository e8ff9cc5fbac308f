"""ACLs on the wire: ``x-amz-acl``, ``x-amz-grant-*`` and ``AccessControlPolicy`` documents.

:func:`screen_acl_headers` runs when a request's headers are in, for the
operations that take an ACL (:data:`ACL_OPERATIONS`): it refuses a canned ACL
or grant header s4d does not know, both kinds at once, any ACL other than
``bucket-owner-full-control`` on a bucket whose ACLs are disabled
(``BucketOwnerEnforced``: ``AccessControlListNotSupported``), and a public ACL
on a bucket that blocks them (``BlockPublicAcls``: ``AccessDenied``).
:func:`requested_acl` then builds the ACL a request asks for, resolving each
grantee; :func:`parse_acl_document` and :func:`render_acl` read and write the
XML form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element

from s4d.auth import acl as acls
from s4d.auth.access import BUCKET_OWNER_PREFERRED, BucketAccess
from s4d.auth.acl import Acl, Grant
from s4d.auth.principal import Principal
from s4d.errors import S3Error
from s4d.s3.headers import CallHeaders
from s4d.s3.xml import S3_NS, child_text, escape, parse

#: Operations that take ``x-amz-acl`` or ``x-amz-grant-*``.
ACL_OPERATIONS = frozenset(
    {"CreateBucket", "PutObject", "CopyObject", "CreateMultipartUpload", "PutObjectAcl",
     "PutBucketAcl"}
)  # fmt: skip
#: The only ACL a bucket with ACLs disabled accepts on writes.
ENFORCED_ALLOWED = "bucket-owner-full-control"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: Finds the user a grant names (user id or canonical id); None if none.
Resolver = Callable[[str], Principal | None]

_GRANTEE = re.compile(
    r'\s*(id|uri|emailAddress)\s*=\s*(?:"([^"]*)"|([^",\s]+))\s*(?:,|$)', re.IGNORECASE
)


def _acl_not_supported() -> S3Error:
    return S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs")


def has_grant_headers(headers: CallHeaders) -> bool:
    """The request carries an ``x-amz-grant-*`` header."""
    return any(name.lower().startswith("x-amz-grant-") for name in headers.names())


def screen_acl_headers(headers: CallHeaders, operation: str, access: BucketAccess | None) -> None:
    """Refuse, before the body, ACL headers s4d does not honour or the bucket refuses."""
    canned = headers.get("x-amz-acl")
    grants = has_grant_headers(headers)
    for name in headers.names():
        lowered = name.lower()
        if lowered.startswith("x-amz-grant-") and lowered not in acls.GRANT_HEADERS:
            raise S3Error("InvalidArgument", f"Unknown grant header {name}.", ArgumentName=name)
    if canned is not None and canned not in acls.CANNED_ACLS:
        raise S3Error("InvalidArgument", None, ArgumentName="x-amz-acl", ArgumentValue=canned)
    if canned is not None and grants:
        raise S3Error(
            "InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed"
        )
    if access is None:
        return
    if not access.acls_enabled and operation != "CreateBucket":
        if operation in ("PutObjectAcl", "PutBucketAcl"):
            if operation == "PutBucketAcl" and canned == ENFORCED_ALLOWED:
                return
            raise _acl_not_supported()
        if grants or (canned is not None and canned != ENFORCED_ALLOWED):
            raise _acl_not_supported()
    if access.block.block_public_acls and (canned in acls.PUBLIC_CANNED or _public_grants(headers)):
        raise S3Error("AccessDenied")


def _public_grants(headers: CallHeaders) -> bool:
    for name in acls.GRANT_HEADERS:
        for value in headers.get_all(name):
            for kind, quoted, bare in _GRANTEE.findall(value):
                if kind.lower() == "uri" and (quoted or bare) in acls.PUBLIC_GROUPS:
                    return True
    return False


def requested_acl(
    headers: CallHeaders, owner: str, bucket_owner: str | None, resolve: Resolver
) -> Acl | None:
    """The ACL a request's headers ask for (canned or grants), owned by ``owner``;
    None when they ask for none. ``bucket_owner``: the bucket's owner, for an object."""
    canned = headers.get("x-amz-acl")
    if canned is not None:
        return acls.canned(canned, owner, bucket_owner)
    grants: list[Grant] = []
    for name, permission in acls.GRANT_HEADERS.items():
        for value in headers.get_all(name):
            grants += _header_grants(name, value, permission, resolve)
    if not grants and not has_grant_headers(headers):
        return None
    return Acl(owner, tuple(grants))


def _header_grants(name: str, value: str, permission: str, resolve: Resolver) -> list[Grant]:
    found: list[Grant] = []
    position = 0
    value = value.strip()
    while position < len(value):
        match = _GRANTEE.match(value, position)
        if match is None:
            raise S3Error("InvalidArgument", f"Invalid {name} header.", ArgumentName=name)
        kind, grantee = match.group(1).lower(), match.group(2) or match.group(3) or ""
        found.append(_grant(kind, grantee, permission, resolve))
        position = match.end()
    return found


def _grant(kind: str, grantee: str, permission: str, resolve: Resolver) -> Grant:
    if kind == "uri":
        if grantee not in acls.GROUPS:
            raise S3Error("InvalidArgument", "Invalid group uri", ArgumentName="uri")
        return Grant(grantee, permission, True)
    if kind == "emailaddress":
        # s4d users have no email addresses to resolve a grant by
        raise S3Error(
            "UnresolvableGrantByEmailAddress",
            "The e-mail address you provided does not match any account on record.",
            EmailAddress=grantee,
        )
    user = resolve(grantee)
    if user is None:
        raise S3Error("InvalidArgument", "Invalid id", ArgumentName="CanonicalUser/ID",
                      ArgumentValue=grantee)  # fmt: skip
    return Grant(user.user_id, permission)


def parse_acl_document(body: bytes, owner: str, resolve: Resolver) -> Acl:
    """An ``AccessControlPolicy`` document as an ACL of ``owner`` (the owner cannot change)."""
    root = parse(body)
    if root.tag != "AccessControlPolicy":
        raise S3Error("MalformedACLError")
    owner_id = child_text(root, "Owner/ID")
    if owner_id is not None:
        named = resolve(owner_id.strip())
        if named is None or named.user_id != owner:
            raise S3Error("AccessDenied")
    grants: list[Grant] = []
    listing = root.find("AccessControlList")
    for element in listing.findall("Grant") if listing is not None else ():
        grants.append(_document_grant(element, resolve))
    return Acl(owner, tuple(grants))


def _document_grant(element: Element, resolve: Resolver) -> Grant:
    permission = (child_text(element, "Permission") or "").strip()
    if permission not in acls.PERMISSIONS:
        raise S3Error("MalformedACLError")
    grantee = element.find("Grantee")
    if grantee is None:
        raise S3Error("MalformedACLError")
    kind = ""
    for name, value in grantee.attrib.items():
        if name.endswith("type"):
            kind = value
    uri = child_text(grantee, "URI")
    user_id = child_text(grantee, "ID")
    email = child_text(grantee, "EmailAddress")
    if kind == "Group" or (not kind and uri):
        return _grant("uri", (uri or "").strip(), permission, resolve)
    if kind == "AmazonCustomerByEmail" or (not kind and email):
        return _grant("emailaddress", (email or "").strip(), permission, resolve)
    if kind == "CanonicalUser" or (not kind and user_id):
        return _grant("id", (user_id or "").strip(), permission, resolve)
    raise S3Error("MalformedACLError")


ANONYMOUS_ID = hashlib.sha256(b"anonymous").hexdigest()


def render_acl(acl: Acl, display: Resolver) -> bytes:
    """The ``AccessControlPolicy`` document of ``acl`` (users shown by canonical id and name).

    Grants to groups come first, then grants to users, each in the order they were
    given, whatever order a document put them in: the order the canned ACLs have,
    and the one S3 servers list (s3-tests compares lists that mix the two in it).
    """

    def user(user_id: str) -> tuple[str, str]:
        found = display(user_id)
        if found is None:
            return ANONYMOUS_ID if not user_id else user_id, user_id or "anonymous"
        return found.canonical_id, found.username

    oid, oname = user(acl.owner)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<AccessControlPolicy xmlns="{S3_NS}">',
        f"<Owner><ID>{escape(oid)}</ID><DisplayName>{escape(oname)}</DisplayName></Owner>",
        "<AccessControlList>",
    ]
    for grant in sorted(acl.grants, key=lambda g: not g.group):
        if grant.group:
            grantee = (
                f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group"><URI>{escape(grant.grantee)}</URI>'
                "</Grantee>"
            )
        else:
            gid, gname = user(grant.grantee)
            grantee = (
                f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser"><ID>{escape(gid)}</ID>'
                f"<DisplayName>{escape(gname)}</DisplayName></Grantee>"
            )
        parts.append(f"<Grant>{grantee}<Permission>{grant.permission}</Permission></Grant>")
    parts.append("</AccessControlList></AccessControlPolicy>")
    return "".join(parts).encode()


def object_acl_record(
    headers: CallHeaders,
    principal: Principal | None,
    access: BucketAccess | None,
    resolve: Resolver,
    canned: str | None = None,
) -> dict[str, object] | None:
    """The ACL (and owner) to store with a new object version, in its stored form.

    The writer owns the version (the bucket owner when it writes anonymously,
    when the bucket enforces ownership, or under ``BucketOwnerPreferred`` with
    ``bucket-owner-full-control``); None when the bucket owner writes without
    asking for an ACL (the default, private, needs no record). ``canned``: a POST
    form's ``acl`` field, checked here as headers are checked before the body.
    """
    if access is None:
        return None
    if canned is not None:
        if canned not in acls.CANNED_ACLS:
            raise S3Error("InvalidArgument", None, ArgumentName="acl", ArgumentValue=canned)
        if not access.acls_enabled and canned != ENFORCED_ALLOWED:
            raise _acl_not_supported()
        if access.block.block_public_acls and canned in acls.PUBLIC_CANNED:
            raise S3Error("AccessDenied")
    if not access.acls_enabled:
        return None
    writer = principal.user_id if principal is not None else access.owner
    name = canned if canned is not None else headers.get("x-amz-acl")
    if access.ownership == BUCKET_OWNER_PREFERRED and name == ENFORCED_ALLOWED:
        writer = access.owner
    if canned is not None:
        asked: Acl | None = acls.canned(canned, writer, access.owner)
    else:
        asked = requested_acl(headers, writer, access.owner, resolve)
    if asked is None:
        if writer == access.owner:
            return None
        asked = acls.private(writer)
    return asked.encode()
