"""One frozen configuration object, built from the environment and twistd options.

S4's environment variables are honoured; a twistd option with the same meaning
wins over the variable. Nothing else in s4d reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}  # fmt: skip


class ConfigError(ValueError):
    """A setting has a value s4d cannot use."""


def parse_size(text: str) -> int:
    """``"5GB"``, ``"100M"``, ``"1024KB"`` or a plain byte count."""
    raw = text.strip().lower().replace(" ", "")
    digits = raw.rstrip(string.ascii_lowercase)
    unit = raw[len(digits) :]
    if unit not in _SIZE_UNITS or not digits:
        raise ConfigError(f"not a size: {text!r}")
    try:
        return int(float(digits) * _SIZE_UNITS[unit])
    except ValueError:
        raise ConfigError(f"not a size: {text!r}") from None


def parse_bool(text: str) -> bool:
    """``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {text!r}")


def parse_bind(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"S4_BIND must be host:port, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class Config:
    """Every setting of one s4d process."""

    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: str = "s4-data"
    access_key: str = ""
    secret_key: str = ""
    credentials_generated: bool = False
    region: str = "us-east-1"
    domain: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_upload_size: int = 5 << 30
    segment_size: int = 1 << 30
    chunk_size: int = 4 << 20
    map_size: int = 64 << 30
    compression: str = "off"
    compression_level: int = 3
    fsync: bool = True
    threads: int = 8
    workers: int = 1
    root_username: str = "root"
    root_password: str | None = None
    jwt_secret: str | None = None
    compaction: dict[str, Any] = field(default_factory=dict)
    #: the background scrubber: enabled, interval_secs, rate (bytes/s)
    scrub: dict[str, Any] = field(default_factory=dict)
    lifecycle: dict[str, Any] = field(default_factory=dict)
    #: abandoned multipart uploads expire after this long (S4_MULTIPART_UPLOAD_TTL_HOURS,
    #: or S4_COMPACTION_MULTIPART_TTL_SECS in seconds); 0 keeps them forever
    multipart_ttl_hours: float = 24.0
    #: connection hygiene (s4d.s3.request.ConnectionLimits); timeouts in seconds, 0 = off
    idle_timeout: float = 60.0
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    body_min_rate: int = 1024
    max_header_bytes: int = 64 << 10
    max_connections: int = 1024


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def build(options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration: options override environment, which overrides defaults.

    Credentials that are configured nowhere are generated once and kept in
    ``<data_dir>/credentials.json`` (mode 0600).
    """
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    env = os.environ if env is None else env

    def pick(opt: str, var: str, default: str | None = None) -> str | None:
        if opt in opts:
            return str(opts[opt])
        value = _env(env, var)
        return value if value is not None else default

    host, port = parse_bind(pick("bind", "S4_BIND", "127.0.0.1:9000") or "")
    if "port" in opts:
        port = int(opts["port"])
    data_dir = os.path.abspath(pick("data-dir", "S4_DATA_DIR", "s4-data") or "s4-data")
    access_key = pick("access-key", "S4_ACCESS_KEY_ID")
    secret_key = pick("secret-key", "S4_SECRET_ACCESS_KEY")
    generated = False
    if not access_key or not secret_key:
        access_key, secret_key, generated = _stored_credentials(data_dir)
    compression = (pick("compression", "S4_COMPRESSION", "off") or "off").lower()
    if compression not in ("off", "auto", "zstd"):
        raise ConfigError("S4_COMPRESSION must be off, auto or zstd")
    level = _env(env, "S4_COMPRESSION_LEVEL") or "3"
    if not level.lstrip("-").isdigit() or not -7 <= int(level) <= 22:
        raise ConfigError("S4_COMPRESSION_LEVEL must be an integer from -7 to 22")
    cert = pick("tls-cert", "S4_TLS_CERT")
    key = pick("tls-key", "S4_TLS_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("S4_TLS_CERT and S4_TLS_KEY go together")

    def flag(var: str, default: str) -> bool:
        return parse_bool(_env(env, var) or default)

    def number(var: str, default: str) -> float:
        try:
            return float(_env(env, var) or default)
        except ValueError:
            raise ConfigError(f"{var} must be a number") from None

    return Config(
        host=host,
        port=port,
        data_dir=data_dir,
        access_key=access_key,
        secret_key=secret_key,
        credentials_generated=generated,
        region=pick("region", "S4_REGION", "us-east-1") or "us-east-1",
        domain=pick("domain", "S4_DOMAIN"),
        tls_cert=cert,
        tls_key=key,
        max_upload_size=parse_size(pick("max-upload-size", "S4_MAX_UPLOAD_SIZE", "5GB") or "5GB"),
        segment_size=parse_size(pick("segment-size", "S4_SEGMENT_SIZE", "1GB") or "1GB"),
        chunk_size=parse_size(_env(env, "S4_CHUNK_SIZE") or "4MB"),
        map_size=parse_size(_env(env, "S4_LMDB_MAP_SIZE") or "64GB"),
        compression=compression,
        compression_level=int(level),
        fsync=flag("S4_FSYNC", "true"),
        threads=int(number("S4_THREADS", "8")),
        workers=int(pick("workers", "S4_WORKERS", "1") or "1"),
        root_username=_env(env, "S4_ROOT_USERNAME") or "root",
        root_password=_env(env, "S4_ROOT_PASSWORD"),
        jwt_secret=_env(env, "S4_JWT_SECRET"),
        compaction={
            "enabled": flag("S4_COMPACTION_ENABLED", "true"),
            "interval_hours": number("S4_COMPACTION_INTERVAL_HOURS", "6"),
            "threshold": number("S4_COMPACTION_THRESHOLD", "0.3"),
            "dry_run": flag("S4_COMPACTION_DRY_RUN", "false"),
            # s4d's own: how long released chunks and quiet segments are left alone
            # (uploads in flight may still commit against them), and a copy rate cap
            "grace_secs": number("S4_COMPACTION_GRACE_SECS", "3600"),
            "rate": parse_size(_env(env, "S4_COMPACTION_RATE") or "128MB"),
        },
        scrub={
            "enabled": flag("S4_SCRUB_ENABLED", "true"),
            "interval_secs": number("S4_SCRUB_INTERVAL_SECS", "600"),
            "rate": parse_size(_env(env, "S4_SCRUB_RATE") or "16MB"),
        },
        lifecycle={
            "enabled": flag("S4_LIFECYCLE_ENABLED", "true"),
            "interval_hours": number("S4_LIFECYCLE_INTERVAL_HOURS", "24"),
            "dry_run": flag("S4_LIFECYCLE_DRY_RUN", "false"),
        },
        multipart_ttl_hours=(
            number("S4_COMPACTION_MULTIPART_TTL_SECS", "0") / 3600
            if _env(env, "S4_COMPACTION_MULTIPART_TTL_SECS")
            else number("S4_MULTIPART_UPLOAD_TTL_HOURS", "24")
        ),
        idle_timeout=number("S4_IDLE_TIMEOUT", "60"),
        header_timeout=number("S4_HEADER_TIMEOUT", "30"),
        body_timeout=number("S4_BODY_TIMEOUT", "60"),
        body_min_rate=parse_size(_env(env, "S4_BODY_MIN_RATE") or "1KB"),
        max_header_bytes=parse_size(_env(env, "S4_MAX_HEADER_BYTES") or "64KB"),
        max_connections=int(number("S4_MAX_CONNECTIONS", "1024")),
    )


def _stored_credentials(data_dir: str) -> tuple[str, str, bool]:
    path = os.path.join(data_dir, "credentials.json")
    try:
        with open(path) as f:
            stored = json.load(f)
        return stored["access_key_id"], stored["secret_access_key"], True
    except FileNotFoundError:
        pass
    alphabet = string.ascii_uppercase + string.digits
    access = "S4AK" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    os.makedirs(data_dir, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key_id": access, "secret_access_key": secret}, f)
    return access, secret, True
