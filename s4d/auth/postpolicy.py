"""POST Object (browser form upload) policies: signature, expiration, conditions.

The form's ``policy`` field is a base64 JSON document signed with SigV4
(``x-amz-signature`` over the base64 text with the signing key of
``x-amz-credential``) or SigV2 (``signature`` = HMAC-SHA1). Every condition must
hold and every form field must be covered by a condition, except ``file``,
``policy``, the signature fields, ``x-ignore-*`` fields and the checksum of the
file (``x-amz-checksum-crc32`` ...: a check of the upload's integrity, which can
only refuse it; the conformance suite sends one that no condition names).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from s4d.auth.request import CredentialSource
from s4d.auth.sigv2 import sign as sign_v2
from s4d.auth.sigv4 import AuthResult, _parse_credential, hmac_hex, parse_amz_date, signing_key
from s4d.errors import S3Error

#: The fields of a SigV4 form signature and of a SigV2 one, as AWS names them in errors.
V4_FIELDS = ("X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date")
V2_FIELDS = ("AWSAccessKeyId", "Signature")

#: The one form of ``expiration`` AWS takes: ISO 8601 in UTC, ``Z``, optional fraction.
EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z", re.ASCII)

#: Fields no condition needs to mention.
EXEMPT_FIELDS = frozenset(
    {"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid", "submit"}
    | {f"x-amz-checksum-{alg}" for alg in ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")}
)


@dataclass
class Policy:
    """A verified policy: who signed it and the conditions to hold."""

    auth: AuthResult
    conditions: list[Any]
    length_range: tuple[int, int] | None = None
    checked: set[str] = field(default_factory=set)


def _deny(message: str) -> S3Error:
    return S3Error("AccessDenied", message)


def verify(fields: dict[str, str], bucket: str, creds: CredentialSource, now: datetime) -> Policy:
    """Check the policy's signature and expiration and the fields' conditions.

    ``fields`` are the form fields before ``file`` (names lower-cased, the key
    with ``${filename}`` already substituted). ``content-length-range`` is
    returned for the caller to check once the file's size is known.
    """
    encoded = fields.get("policy")
    if not encoded:
        raise _deny("Bucket POST must contain a field named 'policy'.")
    auth = _verify_signature(fields, encoded, creds)
    try:
        document = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("conditions"), list):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: missing conditions.")
    expiration = document.get("expiration")
    if not isinstance(expiration, str):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: missing expiration.")
    if now >= _expiration(expiration):
        raise _deny("Invalid according to Policy: Policy expired.")
    policy = Policy(auth, document["conditions"])
    values = dict(fields)
    values["bucket"] = bucket
    for condition in policy.conditions:
        _check(condition, values, policy)
    for name in fields:
        if name in EXEMPT_FIELDS or name.startswith("x-ignore-") or name in policy.checked:
            continue
        raise _deny(f"Invalid according to Policy: Extra input fields: {name}")
    return policy


def _expiration(text: str) -> datetime:
    """The instant of a policy's ``expiration``; ``InvalidPolicyDocument`` unless AWS's form."""
    bad = S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: '{text}'")
    if EXPIRATION.fullmatch(text) is None:
        raise bad
    whole, _, fraction = text[:-1].partition(".")
    try:
        expires = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise bad from None
    return expires.replace(microsecond=int(fraction[:6].ljust(6, "0")) if fraction else 0)


def _missing(name: str) -> S3Error:
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  "
        "If it is specified, please check the order of the fields.",
        ArgumentName=name,
        ArgumentValue="",
    )


def _require_complete(fields: dict[str, str], names: tuple[str, ...]) -> bool:
    """Whether the form signs with this set of fields; a partial set is ``InvalidArgument``."""
    present = [name for name in names if name.lower() in fields]
    if not present:
        return False
    for name in names:
        if name.lower() not in fields:
            raise _missing(name)
    return True


def _verify_signature(fields: dict[str, str], encoded: str, creds: CredentialSource) -> AuthResult:
    """Who signed the policy.

    A form carries every field of a SigV4 or a SigV2 signature; one that has
    some of them is a bad argument (400, naming what is missing, as AWS does),
    one that has none is an unsigned policy (403).
    """
    if _require_complete(fields, V4_FIELDS):
        if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise S3Error("InvalidArgument", "Unsupported x-amz-algorithm.")
        credential = _parse_credential(fields.get("x-amz-credential", ""), "InvalidArgument")
        when = parse_amz_date(fields.get("x-amz-date", ""))
        if when is None or when.strftime("%Y%m%d") != credential.date:
            raise S3Error("InvalidArgument", "x-amz-date does not match the credential date.")
        secret = creds.secret_for(credential.access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId")
        key = signing_key(secret, credential.date, credential.region)
        expected = hmac_hex(key, encoded)
        if not _same(expected, fields["x-amz-signature"]):
            raise S3Error("SignatureDoesNotMatch")
        return AuthResult(credential.access_key, "v4-post", "UNSIGNED-PAYLOAD")
    if not _require_complete(fields, V2_FIELDS):
        raise _deny("Bucket POST must contain a signature.")
    access_key = fields["awsaccesskeyid"]
    signature = fields["signature"]
    secret = creds.secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId")
    if not _same(sign_v2(secret, encoded), signature):
        raise S3Error("SignatureDoesNotMatch")
    return AuthResult(access_key, "v2-post", "UNSIGNED-PAYLOAD")


def _same(expected: str, provided: str) -> bool:
    """Constant-time comparison of a signature with what the form holds (any text)."""
    return hmac.compare_digest(expected.encode("utf-8"), provided.encode("utf-8", "replace"))


def _check(condition: Any, values: dict[str, str], policy: Policy) -> None:
    if isinstance(condition, dict):
        if len(condition) != 1:
            raise S3Error("InvalidPolicyDocument", "Invalid Policy: bad condition.")
        ((name, wanted),) = condition.items()
        _eq(name.lower().lstrip("$"), str(wanted), values, policy)
        return
    if not isinstance(condition, list) or len(condition) != 3:
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: bad condition.")
    op = str(condition[0]).lower()
    if op == "content-length-range":
        try:
            low, high = int(condition[1]), int(condition[2])
        except (TypeError, ValueError, OverflowError):
            raise S3Error("InvalidPolicyDocument", "Invalid content-length-range.") from None
        policy.length_range = (low, high)
        return
    name = str(condition[1]).lower()
    if not name.startswith("$"):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: field names start with $.")
    name = name[1:]
    if op == "eq":
        _eq(name, str(condition[2]), values, policy)
    elif op == "starts-with":
        prefix = str(condition[2])
        value = values.get(name, "")
        if name == "content-type":
            ok = all(v.strip().startswith(prefix) for v in value.split(","))
        else:
            ok = value.startswith(prefix)
        if not ok:
            raise _deny(
                "Invalid according to Policy: Policy Condition failed: "
                f'["starts-with", "${name}", "{prefix}"]'
            )
        policy.checked.add(name)
    else:
        raise S3Error("InvalidPolicyDocument", f"Invalid Policy: unknown condition {op}.")


def _eq(name: str, wanted: str, values: dict[str, str], policy: Policy) -> None:
    if values.get(name) != wanted:
        raise _deny(
            f'Invalid according to Policy: Policy Condition failed: ["eq", "${name}", "{wanted}"]'
        )
    policy.checked.add(name)
