"""Access writes under fire: a worker that changes one bucket's access documents, with a model.

Used by :mod:`tests.crash.test_crash_access`. An :class:`AccessWorker` owns one
bucket and, over one :class:`~s4d.bench.workload.S3Http` connection, changes
what ``put_access`` and ``set_acl`` store: PutBucketPolicy (public and
private policies, each one distinct) and DeleteBucketPolicy, PutBucketAcl and
PutObjectAcl with canned ACLs, Put/DeleteBucketOwnershipControls and
Put/DeletePublicAccessBlock with random flags.

The documents interact, and the server checks them inside the transaction
that stores a change: a public ACL under ``BlockPublicAcls`` and a public
policy under ``BlockPublicPolicy`` are ``AccessDenied``, ACLs other than the
owner's full control under ``BucketOwnerEnforced`` are
``AccessControlListNotSupported``, and ``BucketOwnerEnforced`` over a bucket
ACL that grants more is ``InvalidBucketAclWithObjectOwnership``. With one
writer per bucket the model (:class:`AccessModel`) knows every document as
acknowledged, so it predicts each answer exactly: an acceptance or refusal it
did not predict is reported (:attr:`AccessWorker.wrong`). The change in flight
when the server is killed may or may not have landed; after the restart
:meth:`AccessModel.settle` reads every document back and finds each one as
acknowledged (or, for the one in flight, as it was asked to become).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import Any

from s4d.bench.workload import S3_NS, S3Http

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ENFORCED = "BucketOwnerEnforced"
OWNERSHIP = ("ObjectWriter", "BucketOwnerPreferred", ENFORCED)
#: Canned ACLs and the grants to groups each adds to the owner's full control.
CANNED = {
    "private": (),
    "bucket-owner-full-control": (),
    "public-read": ((ALL_USERS, "READ"),),
    "public-read-write": ((ALL_USERS, "READ"), (ALL_USERS, "WRITE")),
    "authenticated-read": ((AUTHENTICATED_USERS, "READ"),),
}
PUBLIC_CANNED = frozenset({"public-read", "public-read-write", "authenticated-read"})
#: The public-access block's flags, in document order.
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
#: The objects of each bucket whose ACLs change.
OBJECTS = ("o0", "o1", "o2")

Grants = frozenset[tuple[str, str]]
Flags = tuple[bool, bool, bool, bool]


def canned_grants(owner: str, name: str) -> Grants:
    """What GetBucketAcl/GetObjectAcl list for a canned ACL of ``owner`` (canonical id)."""
    return frozenset({(owner, "FULL_CONTROL"), *CANNED[name]})


@dataclass
class Pending:
    """The change in flight: document ``name`` asked to become ``value``."""

    name: str
    value: Any


class AccessModel:
    """One bucket's access documents, as acknowledged, and the change in flight.

    Documents by name: ``policy`` (the bytes put, or None), ``acl`` (the bucket
    ACL's grants), ``ownership`` (the setting, or None), ``pab`` (the four flags,
    or None), ``object:<key>`` (the object ACL's grants).
    """

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.owner = ""  # the owner's canonical id, learnt when the bucket is made
        self.documents: dict[str, Any] = {}
        self.pending: Pending | None = None

    def start(self, owner: str) -> None:
        """The documents of a new bucket whose owner's canonical id is ``owner``."""
        self.owner = owner
        private = canned_grants(owner, "private")
        self.documents = {"policy": None, "acl": private, "ownership": None, "pab": None}
        self.documents.update({f"object:{key}": private for key in OBJECTS})

    @property
    def enforced(self) -> bool:
        """ACLs are disabled (``BucketOwnerEnforced``)."""
        return bool(self.documents["ownership"] == ENFORCED)

    def flag(self, name: str) -> bool:
        """One flag of the public-access block (False when none is set)."""
        pab = self.documents["pab"]
        return bool(pab is not None and pab[FLAGS.index(name)])

    def settle(self, client: S3Http) -> list[str]:
        """Read every document back after a restart; the problems; adopt what is there."""
        problems = []
        pending, self.pending = self.pending, None
        for name, acknowledged in self.documents.items():
            found = read_document(client, self.bucket, name)
            allowed = [acknowledged]
            if pending is not None and pending.name == name:
                allowed.append(pending.value)
            if found not in allowed:
                problems.append(
                    f"{self.bucket} {name}: found {found!r}, acknowledged {acknowledged!r}"
                    + (f", in flight {pending.value!r}" if len(allowed) > 1 else "")
                )
            self.documents[name] = found
        return problems


def read_document(client: S3Http, bucket: str, name: str) -> Any:
    """One access document as the server answers it (None: not set)."""
    if name.startswith("object:"):
        return read_grants(client, bucket, name.removeprefix("object:"))
    if name == "acl":
        return read_grants(client, bucket, "")
    query, missing = {
        "policy": ("policy", "NoSuchBucketPolicy"),
        "ownership": ("ownershipControls", "OwnershipControlsNotFoundError"),
        "pab": ("publicAccessBlock", "NoSuchPublicAccessBlockConfiguration"),
    }[name]
    r = client.request("GET", bucket, "", [(query, "")])
    if r.status == 404 and r.error_code() == missing:
        return None
    if r.status != 200:
        raise RuntimeError(f"GET {bucket}?{query}: {r.status} {r.error_text()}")
    if name == "policy":
        return r.body
    root = ET.fromstring(r.body)
    if name == "ownership":
        return root.findtext(f"{S3_NS}Rule/{S3_NS}ObjectOwnership")
    return tuple(root.findtext(f"{S3_NS}{flag}") == "true" for flag in FLAGS)


def read_grants(client: S3Http, bucket: str, key: str) -> Grants:
    """The grants GetBucketAcl (``key`` empty) or GetObjectAcl lists."""
    r = client.request("GET", bucket, key, [("acl", "")])
    if r.status != 200:
        raise RuntimeError(f"GET {bucket}/{key}?acl: {r.status} {r.error_text()}")
    grants = set()
    for grant in ET.fromstring(r.body).iter(f"{S3_NS}Grant"):
        grantee = grant.find(f"{S3_NS}Grantee")
        assert grantee is not None
        who = grantee.findtext(f"{S3_NS}ID") or grantee.findtext(f"{S3_NS}URI") or "?"
        grants.add((who, grant.findtext(f"{S3_NS}Permission") or "?"))
    return frozenset(grants)


class AccessWorker(threading.Thread):
    """The one writer of one bucket's access documents, until stopped.

    :param killed: set (with ``stop``) when the server was killed: connection
        errors then end the worker, its change in flight left open.
    """

    def __init__(
        self,
        server: Any,
        model: AccessModel,
        seed: int,
        stop: threading.Event,
        killed: threading.Event,
    ) -> None:
        super().__init__(name=f"access worker {model.bucket}", daemon=True)
        self.client: S3Http = server.client()
        self.model = model
        self.bucket = model.bucket
        self.rng = random.Random(seed)
        self.stop, self.killed = stop, killed
        self.acked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.wrong: list[str] = []
        self.failure: BaseException | None = None
        self.serial = 0

    def run(self) -> None:
        ops = ["policy", "bucket_acl", "object_acl", "ownership", "block"]
        try:
            while not self.stop.is_set():
                op = self.rng.choice(ops)
                try:
                    getattr(self, "op_" + op)()
                except (OSError, http.client.HTTPException):
                    if self.killed.is_set():
                        return  # the change in flight stays open for the driver
                    raise
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            if not self.killed.is_set():
                self.failure = e
        finally:
            self.client.close()

    def change(
        self,
        kind: str,
        name: str,
        value: Any,
        refusal: str,
        method: str,
        key: str,
        query: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """Send one change of document ``name`` to ``value``; ``refusal``: the error code
        the model expects ("" when it expects the change to be stored)."""
        self.model.pending = Pending(name, value) if not refusal else None
        r = self.client.request(method, self.bucket, key, [(query, "")], headers, body)
        self.model.pending = None
        code = r.error_code()
        what = f"{method} {self.bucket}/{key}?{query} {headers or ''} {body[:60]!r}"
        if refusal:
            if r.status < 300 or code != refusal:
                self.wrong.append(f"{what}: {r.status} {r.error_text()}, expected {refusal}")
                if r.status < 300:
                    self.model.documents[name] = value
                return
            self.refused[kind] += 1
            return
        if r.status >= 300:
            self.wrong.append(f"{what}: {r.status} {r.error_text()}, expected to be stored")
            return
        self.model.documents[name] = value
        self.acked[kind] += 1

    # -- operations ----------------------------------------------------------------------

    def op_policy(self) -> None:
        if self.rng.random() < 0.25:
            self.change("policy", "policy", None, "", "DELETE", "", "policy")
            return
        self.serial += 1
        public = self.rng.random() < 0.4
        statement: dict[str, Any] = {
            "Sid": f"s{self.serial}",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{self.bucket}/{self.serial}/*",
        }
        if not public:
            statement["Condition"] = {"IpAddress": {"aws:SourceIp": "10.9.0.0/16"}}
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]}).encode()
        refusal = "AccessDenied" if public and self.model.flag("BlockPublicPolicy") else ""
        self.change("policy", "policy", document, refusal, "PUT", "", "policy", body=document)

    def op_bucket_acl(self) -> None:
        name = self.rng.choice(list(CANNED))
        refusal = ""
        if self.model.enforced and name != "bucket-owner-full-control":
            refusal = "AccessControlListNotSupported"
        elif name in PUBLIC_CANNED and self.model.flag("BlockPublicAcls"):
            refusal = "AccessDenied"
        grants = canned_grants(self.model.owner, name)
        self.change("acl", "acl", grants, refusal, "PUT", "", "acl", {"x-amz-acl": name})

    def op_object_acl(self) -> None:
        key = self.rng.choice(OBJECTS)
        name = self.rng.choice(list(CANNED))
        refusal = ""
        if self.model.enforced:
            refusal = "AccessControlListNotSupported"
        elif name in PUBLIC_CANNED and self.model.flag("BlockPublicAcls"):
            refusal = "AccessDenied"
        grants = canned_grants(self.model.owner, name)
        self.change(
            "object-acl", f"object:{key}", grants, refusal, "PUT", key, "acl", {"x-amz-acl": name}
        )

    def op_ownership(self) -> None:
        if self.rng.random() < 0.3:
            self.change("ownership", "ownership", None, "", "DELETE", "", "ownershipControls")
            return
        setting = self.rng.choice(OWNERSHIP)
        refusal = ""
        if setting == ENFORCED and self.model.documents["acl"] != canned_grants(
            self.model.owner, "private"
        ):
            refusal = "InvalidBucketAclWithObjectOwnership"
        body = (
            "<OwnershipControls><Rule><ObjectOwnership>"
            f"{setting}</ObjectOwnership></Rule></OwnershipControls>"
        ).encode()
        self.change(
            "ownership", "ownership", setting, refusal, "PUT", "", "ownershipControls", body=body
        )

    def op_block(self) -> None:
        if self.rng.random() < 0.3:
            self.change("block", "pab", None, "", "DELETE", "", "publicAccessBlock")
            return
        flags = tuple(self.rng.random() < 0.4 for _ in FLAGS)
        body = (
            "<PublicAccessBlockConfiguration>"
            + "".join(
                f"<{name}>{'true' if on else 'false'}</{name}>"
                for name, on in zip(FLAGS, flags, strict=True)
            )
            + "</PublicAccessBlockConfiguration>"
        ).encode()
        self.change("block", "pab", flags, "", "PUT", "", "publicAccessBlock", body=body)
