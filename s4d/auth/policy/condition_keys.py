"""The condition keys a bucket policy may test, as data.

AWS's global keys (``aws:``) and Amazon S3's service keys (``s3:``), in lower
case (key names are case-insensitive). A key outside these lists makes a policy
``MalformedPolicy`` ("Policy has an invalid condition key").
"""

from __future__ import annotations

#: Keys tested by their full name.
KNOWN_KEYS: frozenset[str] = frozenset(
    key.lower()
    for key in (
        # global keys
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:Referer",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:TagKeys",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
        # Amazon S3's keys
        "s3:AccessGrantsInstanceArn",
        "s3:AccessPointNetworkOrigin",
        "s3:authType",
        "s3:DataAccessPointAccount",
        "s3:DataAccessPointArn",
        "s3:delimiter",
        "s3:ExistingJobOperation",
        "s3:ExistingJobPriority",
        "s3:if-match",
        "s3:if-none-match",
        "s3:JobSuspendedCause",
        "s3:LocationConstraint",
        "s3:max-keys",
        "s3:object-lock-legal-hold",
        "s3:object-lock-mode",
        "s3:object-lock-remaining-retention-days",
        "s3:object-lock-retain-until-date",
        "s3:prefix",
        "s3:RequestJobOperation",
        "s3:RequestJobPriority",
        "s3:RequestObjectTagKeys",
        "s3:ResourceAccount",
        "s3:signatureAge",
        "s3:signatureversion",
        "s3:TlsVersion",
        "s3:VersionId",
        "s3:x-amz-acl",
        "s3:x-amz-content-sha256",
        "s3:x-amz-copy-source",
        "s3:x-amz-grant-full-control",
        "s3:x-amz-grant-read",
        "s3:x-amz-grant-read-acp",
        "s3:x-amz-grant-write",
        "s3:x-amz-grant-write-acp",
        "s3:x-amz-metadata-directive",
        "s3:x-amz-object-ownership",
        "s3:x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:x-amz-server-side-encryption-customer-algorithm",
        "s3:x-amz-storage-class",
        "s3:x-amz-website-redirect-location",
    )
)

#: Keys that name a tag after a ``/`` (``s3:ExistingObjectTag/<tag-key>``).
KNOWN_PREFIXES: tuple[str, ...] = tuple(
    prefix.lower()
    for prefix in (
        "aws:PrincipalTag/",
        "aws:RequestTag/",
        "aws:ResourceTag/",
        "s3:BucketTag/",
        "s3:ExistingObjectTag/",
        "s3:RequestObjectTag/",
    )
)


def is_known_key(key: str) -> bool:
    """Whether ``key`` (any case) is a condition key a bucket policy may use."""
    lower = key.lower()
    if lower in KNOWN_KEYS:
        return True
    return any(lower.startswith(prefix) and len(lower) > len(prefix) for prefix in KNOWN_PREFIXES)
