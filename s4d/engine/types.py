"""The record types the layers above the engine read and build.

They are defined next to the rules that use them (:mod:`s4d.store.model`,
:mod:`s4d.features`); the S3 layer and the admin API take them from here, the
engine's public surface, and never import the store or the rules directly.
"""

from __future__ import annotations

from s4d.features.cors import (
    CORS,
    CorsRule,
    actual_headers,
    check_cors_rules,
    decode_cors,
    encode_cors,
    preflight_headers,
)
from s4d.features.lifecycle import (
    LIFECYCLE,
    LifecycleFilter,
    LifecycleRule,
    Transition,
    check_rules,
    decode_rules,
    encode_rules,
    normal_date,
)
from s4d.features.lock import MODES as LOCK_MODES
from s4d.features.lock import may_remove
from s4d.features.multipart import (
    MIN_PART_SIZE,
    Completion,
    ObjectChecksums,
    PartsPage,
    RequestedPart,
    UploadsPage,
    check_part_number,
)
from s4d.features.objects import (
    CopySource,
    DeleteOutcome,
    NewObject,
    WriteConditions,
    check_key,
    check_version_id,
)
from s4d.features.rename import Rename, RenameConditions, RenameOutcome
from s4d.features.tagging import (
    MAX_BUCKET_TAGS,
    MAX_OBJECT_TAGS,
    check_tags,
    query_tags,
)
from s4d.store.chunks import WrittenChunk
from s4d.store.model import (
    NO_LOCK,
    NULL_VERSION,
    Bucket,
    ChunkLocation,
    DefaultRetention,
    KeysPage,
    ListResult,
    MultipartUpload,
    ObjectLock,
    ObjectVersion,
    PartRecord,
    VersionEntry,
    VersionsPage,
)

__all__ = [
    "CORS",
    "LIFECYCLE",
    "CorsRule",
    "LifecycleFilter",
    "LifecycleRule",
    "Transition",
    "actual_headers",
    "check_cors_rules",
    "check_rules",
    "decode_cors",
    "decode_rules",
    "encode_cors",
    "encode_rules",
    "normal_date",
    "preflight_headers",
    "LOCK_MODES",
    "MAX_BUCKET_TAGS",
    "MAX_OBJECT_TAGS",
    "MIN_PART_SIZE",
    "NO_LOCK",
    "NULL_VERSION",
    "Bucket",
    "ChunkLocation",
    "Completion",
    "CopySource",
    "DefaultRetention",
    "DeleteOutcome",
    "KeysPage",
    "ListResult",
    "MultipartUpload",
    "NewObject",
    "ObjectChecksums",
    "ObjectLock",
    "ObjectVersion",
    "PartRecord",
    "PartsPage",
    "Rename",
    "RenameConditions",
    "RenameOutcome",
    "RequestedPart",
    "UploadsPage",
    "VersionEntry",
    "VersionsPage",
    "WriteConditions",
    "WrittenChunk",
    "check_key",
    "check_part_number",
    "check_version_id",
    "check_tags",
    "may_remove",
    "query_tags",
]
