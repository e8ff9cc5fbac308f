"""The admin API's data routes: statistics, buckets (and their policies), objects,
compaction, scrubber, server.

S4's routes with S4's shapes (``docs/operations.rst`` lists them with curl
examples), and a few more: the status of compaction and lifecycle, the server's shape, and
s4d's O(1) prefix rename. Every route asks the :class:`~s4d.admin.guard.AdminGuard`
first: ``GET /api/stats`` takes any valid token, everything under
``/api/admin/`` a SuperUser's. Work that touches the store runs through the
engine's facades, off the reactor thread. JSON in and out; errors are
``{"error": "..."}`` (:mod:`s4d.admin.jsonapi`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from s4d.admin.figures import FiguresBoard, ServerInfo
from s4d.admin.guard import AdminCaller, AdminGuard
from s4d.admin.jsonapi import (
    ApiError,
    Query,
    json_error,
    json_response,
    no_content,
    note_caller,
    read_json,
)
from s4d.auth.access import BucketAccess
from s4d.auth.bucket_access import (
    BLOCK_FLAGS,
    POLICY,
    block_flags,
    bucket_access,
    is_public,
    refuse_public_policy,
)
from s4d.auth.policy import MAX_POLICY_BYTES, compile_policy
from s4d.engine import (
    ACCESS_DOCUMENTS,
    CompactionReport,
    Engine,
    Rename,
    RenameConditions,
    ScrubReport,
    check_bucket_name,
)
from s4d.util.duties import duty_holder

#: Keys a listing page may hold at most (S3's cap).
MAX_KEYS = 1000
#: The query parameter spellings that mean the same (S4's console sends the first).
LISTING_ALIASES = (("max-keys", "max_keys"), ("continuation-token", "continuation_token"))


def rfc3339(seconds: float) -> str:
    """Seconds since the epoch as an RFC 3339 UTC time."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def encode_token(marker: str) -> str:
    """A continuation token for a listing that ended at ``marker`` (URL-safe base64, unpadded)."""
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token: str) -> str:
    """The marker a continuation token holds; :class:`ApiError` 400 if it holds none."""
    try:
        raw = token.encode("ascii")
        padded = raw + b"=" * (-len(raw) % 4)
        marker = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        marker = ""
    if not marker:
        raise ApiError(400, "the continuation token is not valid")
    return marker


def compaction_json(report: CompactionReport) -> dict[str, Any]:
    """A compaction pass in S4's shape (volumes are segment files, blobs are chunks)."""
    chosen = [p for p in report.segments if p.outcome != "skipped"]
    if report.dry_run:
        compacted = chosen
        live = sum(p.live_records for p in chosen)
        reclaimed = sum(p.size - p.live_bytes for p in chosen)
    else:
        compacted = [p for p in report.segments if p.outcome == "done"]
        live = report.copied_records
        reclaimed = max(0, report.freed_bytes)
    unfinished = sum(1 for p in report.segments if p.outcome == "unfinished")
    return {
        "volumes_scanned": report.considered,
        "volumes_compacted": len(compacted),
        "volumes_skipped": report.considered - len(compacted),
        "live_blobs": live,
        "dead_blobs": sum(p.scanned_records - p.live_records for p in compacted),
        "bytes_reclaimed": reclaimed,
        "errors": len(report.damaged) + unfinished,
        "dry_run": report.dry_run,
        "seconds": round(report.seconds, 3),
        "segments": [
            {"segment": p.segment, "size": p.size, "dead_bytes": p.dead, "outcome": p.outcome}
            for p in report.segments
        ],
    }


def scrub_json(report: ScrubReport) -> dict[str, Any]:
    """A scrub pass in S4's shape; CRCs are not kept, so they are null."""
    return {
        "blobs_checked": report.chunks,
        "blobs_ok": report.chunks - len(report.corrupt),
        "blobs_corrupted": len(report.corrupt),
        "volumes_scanned": len(report.segments),
        "errors": [
            {
                "volume_id": item.segment,
                "offset": item.offset,
                "key": item.keys[0] if item.keys else "",
                "expected_crc": None,
                "actual_crc": None,
                "digest": item.digest,
                "reason": item.reason,
                "keys": item.keys,
            }
            for item in report.corrupt
        ],
        "bytes_checked": report.bytes,
        "seconds": round(report.seconds, 3),
    }


class OpsApi:
    """The admin API's data routes (mounted on the ops app).

    :param engine: the engine's facades.
    :param guard: who may call.
    :param board: the server's running figures (uptime, last maintenance runs).
    :param info: the server's version and shape.
    :param compaction: the compaction settings (``Config.compaction``).
    :param scrub: the scrubber settings (``Config.scrub``).
    :param now: the wall clock (seconds since the epoch).
    """

    app = Klein()
    app.handle_errors(Exception)(json_error)
    prefixes: tuple[bytes, ...] = (
        b"/api/stats",
        b"/api/admin/bucket-stats",
        b"/api/admin/buckets",
        b"/api/admin/compaction",
        b"/api/admin/scrubber",
        b"/api/admin/lifecycle",
        b"/api/admin/server",
    )

    def __init__(
        self,
        engine: Engine,
        guard: AdminGuard,
        board: FiguresBoard,
        info: ServerInfo,
        compaction: Mapping[str, Any],
        scrub: Mapping[str, Any],
        now: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.guard = guard
        self.board = board
        self.info = info
        self.compaction = compaction
        self.scrub = scrub
        self.now = now

    def resource(self) -> IResource:
        """The Klein resource serving these routes."""
        served: IResource = self.app.resource()
        return served

    def _superuser(self, request: IRequest) -> AdminCaller:
        return note_caller(request, self.guard.superuser(request))

    # -- statistics ----------------------------------------------------------------

    @app.route("/api/stats", methods=["GET"])
    async def stats(self, request: IRequest) -> bytes:
        """S4's dashboard figures (any valid token)."""
        note_caller(request, self.guard.caller(request))
        Query(request).done()
        overview = await self.engine.admin.overview()
        stats = overview.stats
        unique, references = stats.chunks, stats.refs
        return json_response(
            request,
            {
                "uptime_seconds": int(max(0.0, self.now() - self.board.server().started)),
                "buckets_count": overview.buckets,
                "objects_count": stats.objects,
                "storage_used_bytes": stats.logical_bytes,
                "dedup_unique_blobs": unique,
                "dedup_total_references": references,
                "dedup_ratio": round(1 - unique / references, 6) if references else 0.0,
            },
        )

    @app.route("/api/admin/bucket-stats", methods=["GET"])
    async def bucket_stats(self, request: IRequest) -> bytes:
        """Every bucket with its object count, bytes and creation time (ns)."""
        self._superuser(request)
        Query(request).done()
        usage = await self.engine.admin.all_usage()
        buckets: list[dict[str, Any]] = [
            {
                "name": bucket.name,
                "objects_count": used.objects,
                "storage_used_bytes": used.bytes,
                "created_at": bucket.created_ns,
            }
            for bucket, used in usage
        ]
        total = sum(b["storage_used_bytes"] for b in buckets)
        return json_response(request, {"buckets": buckets, "total_storage_bytes": total})

    # -- buckets and objects -------------------------------------------------------

    @app.route("/api/admin/buckets/<name>", methods=["PUT"])
    async def create_bucket(self, request: IRequest, name: str) -> bytes:
        """Create a bucket: ``{"name"}``, owned by the calling SuperUser."""
        caller = self._superuser(request)
        Query(request).done()
        check_bucket_name(name)
        await self.engine.buckets.create(name, self.info.region, owner=caller.user_id)
        return json_response(request, {"name": name})

    @app.route("/api/admin/buckets/<name>", methods=["DELETE"])
    async def delete_bucket(self, request: IRequest, name: str) -> bytes:
        """Delete a bucket (204); with ``force=true`` everything in it first."""
        self._superuser(request)
        query = Query(request)
        force = query.flag("force")
        query.done()
        if force:
            await self.engine.admin.empty_and_delete(name)
        else:
            await self.engine.buckets.delete(name)
        return no_content(request)

    @app.route("/api/admin/buckets/<name>/objects", methods=["GET"])
    async def list_objects(self, request: IRequest, name: str) -> bytes:
        """One page of keys and common prefixes (grouped by ``/``)."""
        self._superuser(request)
        query = Query(request, LISTING_ALIASES)
        prefix = query.text("prefix")
        max_keys = query.integer("max-keys", MAX_KEYS, 1, MAX_KEYS)
        token = query.optional("continuation-token")
        query.done()
        after = decode_token(token) if token else None
        page = await self.engine.objects.list_page(name, prefix, "/", after, max_keys or MAX_KEYS)
        body: dict[str, Any] = {
            "objects": [
                {
                    "key": entry.key,
                    "size": entry.version.size,
                    "content_type": entry.version.content_type or "application/octet-stream",
                    "last_modified": entry.version.mtime_ns,
                    "etag": entry.version.etag,
                }
                for entry in page.entries
            ],
            "common_prefixes": page.common_prefixes,
            "is_truncated": page.is_truncated,
        }
        if page.is_truncated and page.last is not None:
            body["next_continuation_token"] = encode_token(page.last)
        return json_response(request, body)

    @app.route("/api/admin/buckets/<name>/rename", methods=["POST"])
    async def rename(self, request: IRequest, name: str) -> bytes:
        """Rename a key, or a whole prefix (a source ending in ``/``) in one step."""
        self._superuser(request)
        Query(request).done()
        body = read_json(request)
        source, destination = body.get("source"), body.get("destination")
        merge = body.get("merge", False)
        if not isinstance(source, str) or not isinstance(destination, str):
            raise ApiError(400, "source and destination must be strings")
        if not isinstance(merge, bool):
            raise ApiError(400, "merge must be true or false")
        unknown = set(body) - {"source", "destination", "merge"}
        if unknown:
            raise ApiError(400, f"unknown field: {', '.join(sorted(unknown))}")
        outcome = await self.engine.renames.rename(
            Rename(name, destination, name, source, merge, RenameConditions())
        )
        return json_response(
            request, {"source": source, "destination": destination, "prefix": outcome.prefix}
        )

    # -- who may use a bucket ------------------------------------------------------

    async def _access(self, name: str) -> BucketAccess:
        """The bucket's access configuration, read now (``NoSuchBucket`` if none)."""
        bucket = await self.engine.buckets.get(name)
        documents = {}
        for kind in ACCESS_DOCUMENTS:
            raw = await self.engine.buckets.get_config(name, kind)
            if raw is not None:
                documents[kind] = bytes(raw)
        owner = bucket.owner or self.engine.directory.root_id()
        return bucket_access(name, owner, documents, compile_policy)

    @app.route("/api/admin/buckets/<name>/policy", methods=["GET"])
    async def get_policy(self, request: IRequest, name: str) -> bytes:
        """The bucket's policy (as it was put) and whether it makes the bucket public."""
        self._superuser(request)
        Query(request).done()
        access = await self._access(name)
        if access.policy is None:
            raise ApiError(404, "the bucket has no policy")
        document = json.loads(access.policy.document)
        return json_response(
            request, {"bucket": name, "policy": document, "is_public": access.policy.is_public}
        )

    @app.route("/api/admin/buckets/<name>/policy", methods=["PUT"])
    async def put_policy(self, request: IRequest, name: str) -> bytes:
        """Set the bucket's policy: the body is the policy document (as PutBucketPolicy)."""
        self._superuser(request)
        Query(request).done()
        content = request.content
        document = content.read(MAX_POLICY_BYTES + 1) if content is not None else b""
        await self.engine.buckets.get(name)
        compiled = compile_policy(document, name)
        await self.engine.buckets.put_access(name, POLICY, document, refuse_public_policy(compiled))
        return json_response(request, {"bucket": name, "is_public": compiled.is_public})

    @app.route("/api/admin/buckets/<name>/policy", methods=["DELETE"])
    async def delete_policy(self, request: IRequest, name: str) -> bytes:
        """Remove the bucket's policy (204, whether or not it had one)."""
        self._superuser(request)
        Query(request).done()
        await self.engine.buckets.put_access(name, POLICY, None)
        return no_content(request)

    @app.route("/api/admin/buckets/<name>/public", methods=["GET"])
    async def public(self, request: IRequest, name: str) -> bytes:
        """Whether the bucket is public, and why: its policy, its ACL, its block."""
        self._superuser(request)
        Query(request).done()
        access = await self._access(name)
        flags = block_flags(access.block)
        return json_response(
            request,
            {
                "bucket": name,
                "public": is_public(access),
                "policy_public": access.policy is not None and access.policy.is_public,
                "acl_public": access.acls_enabled and access.bucket_acl().is_public,
                "public_access_block": dict(zip(BLOCK_FLAGS, flags, strict=True)),
                "object_ownership": access.ownership,
            },
        )

    # -- maintenance ---------------------------------------------------------------

    @app.route("/api/admin/compaction/run", methods=["POST"])
    async def run_compaction(self, request: IRequest) -> bytes:
        """One compaction pass now (``dry_run``, ``threshold`` 0 to 1, ``max_volumes``)."""
        self._superuser(request)
        query = Query(request)
        dry_run = query.flag("dry_run")
        threshold = query.number("threshold", 0.0, 0.0, 1.0)
        max_segments = query.integer("max_volumes", None, 1, 1 << 30)
        query.done()
        settings = self.compaction
        report = await self.engine.maintenance.compact(
            threshold=threshold,
            dry_run=dry_run,
            grace=float(settings.get("grace_secs", 3600)),
            rate=settings.get("rate") or None,
            max_segments=max_segments,
        )
        return json_response(request, compaction_json(report))

    @app.route("/api/admin/compaction/status", methods=["GET"])
    def compaction_status(self, request: IRequest) -> bytes:
        """The background compaction's settings, its last run and totals (whole server)."""
        self._superuser(request)
        Query(request).done()
        settings = self.compaction
        figures = self.board.server()
        totals = {k: v for k, v in figures.totals.items() if k.startswith("compaction_")}
        return json_response(
            request,
            {
                "enabled": bool(settings.get("enabled", True)),
                "interval_hours": float(settings.get("interval_hours", 6)),
                "threshold": float(settings.get("threshold", 0.3)),
                "dry_run": bool(settings.get("dry_run", False)),
                "grace_secs": float(settings.get("grace_secs", 3600)),
                "rate_bytes_per_second": settings.get("rate") or None,
                "last_run": figures.last_compaction,
                "totals": totals,
            },
        )

    @app.route("/api/admin/lifecycle/status", methods=["GET"])
    def lifecycle_status(self, request: IRequest) -> bytes:
        """Lifecycle passes: totals of the whole server and this process's last pass.

        Passes run in the main process only; ``last_pass`` is null when another
        process answers or no pass has run since the start.
        """
        self._superuser(request)
        Query(request).done()
        figures = self.board.server()
        prefix = "lifecycle_"
        totals = {k[len(prefix) :]: v for k, v in figures.totals.items() if k.startswith(prefix)}
        report = self.engine.lifecycle.last_report
        return json_response(
            request,
            {"last_pass": report.fields() if report is not None else None, "totals": totals},
        )

    @app.route("/api/admin/scrubber/run", methods=["POST"])
    async def run_scrubber(self, request: IRequest) -> bytes:
        """Check every stored chunk once, now."""
        self._superuser(request)
        Query(request).done()
        report = await self.engine.maintenance.scrub_pass()
        return json_response(request, scrub_json(report))

    @app.route("/api/admin/scrubber/status", methods=["GET"])
    async def scrubber_status(self, request: IRequest) -> bytes:
        """S4's status shape, with the background scrubber's settings, last run and totals."""
        self._superuser(request)
        Query(request).done()
        settings = self.scrub
        enabled = bool(settings.get("enabled", True))
        interval = float(settings.get("interval_secs", 600))
        rate = settings.get("rate") or (16 << 20)
        if enabled:
            message = (
                f"The background scrubber checks stored chunks every {interval:g} s "
                f"at up to {rate} bytes/s; POST /api/admin/scrubber/run checks all of them now."
            )
        else:
            message = (
                "The background scrubber is off (S4_SCRUB_ENABLED=false); "
                "POST /api/admin/scrubber/run checks every stored chunk now."
            )
        overview = await self.engine.admin.overview()
        figures = self.board.server()
        totals = {k: v for k, v in figures.totals.items() if k.startswith("scrub_")}
        return json_response(
            request,
            {
                "mode": "standalone",
                "background_scrubber": enabled,
                "message": message,
                "interval_secs": interval,
                "rate_bytes_per_second": rate,
                "damaged_chunks": overview.damaged_chunks,
                "last_run": figures.last_scrub,
                "totals": totals,
            },
        )

    # -- the server ----------------------------------------------------------------

    @app.route("/api/admin/server", methods=["GET"])
    def server(self, request: IRequest) -> bytes:
        """Version, data directory, processes, which of them runs the duties, and uptime."""
        self._superuser(request)
        Query(request).done()
        figures = self.board.server()
        now = self.now()
        return json_response(
            request,
            {
                "version": self.info.version,
                "data_dir": self.info.data_dir,
                "region": self.info.region,
                "workers": self.info.workers,
                "processes": len(figures.live_pids),
                "duties_pid": duty_holder(self.info.data_dir),
                "started_at": rfc3339(figures.started),
                "uptime_seconds": int(max(0.0, now - figures.started)),
            },
        )
