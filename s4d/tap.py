"""twistd integration: ``twistd -n s4`` options and the service they make."""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.python import usage

from s4d import config as s4config


class Options(usage.Options):
    """Command-line options; each overrides the S4_* variable of the same meaning."""

    synopsis = "[options]"
    longdesc = "Run the s4d S3-compatible object store. Environment: S4_BIND, S4_DATA_DIR, ..."
    optParameters = [
        ["bind", "b", None, "host:port to listen on (S4_BIND, default 127.0.0.1:9000)"],
        ["port", "p", None, "port to listen on (overrides the port of --bind)"],
        ["data-dir", "d", None, "data directory (S4_DATA_DIR, default ./s4-data)"],
        ["access-key", None, None, "S3 access key id (S4_ACCESS_KEY_ID)"],
        ["secret-key", None, None, "S3 secret access key (S4_SECRET_ACCESS_KEY)"],
        ["region", None, None, "region name (S4_REGION, default us-east-1)"],
        ["domain", None, None, "base domain for virtual-host style (S4_DOMAIN)"],
        ["tls-cert", None, None, "PEM certificate (S4_TLS_CERT)"],
        ["tls-key", None, None, "PEM private key (S4_TLS_KEY)"],
        ["compression", None, None, "off, auto or zstd (S4_COMPRESSION)"],
        ["segment-size", None, None, "segment rotation size (S4_SEGMENT_SIZE, default 1GB)"],
        ["max-upload-size", None, None, "largest single PUT (S4_MAX_UPLOAD_SIZE, default 5GB)"],
        ["workers", "w", None, "server processes sharing the port (S4_WORKERS, default 1)"],
    ]
    optFlags = [["check", None, "check the data directory (fsck) and exit"]]


def makeService(options: Any) -> service.IService:
    """Build the s4d service from twistd options."""
    cfg = s4config.build({k: v for k, v in options.items() if k != "check"})
    if options.get("check"):
        import sys

        from s4d.store import fsck

        sys.exit(fsck.main([cfg.data_dir]))
    from s4d.service import make_service

    return make_service(cfg)
