"""An s4d S3 server inside the test process, on a loopback port.

The real stack runs: the streaming ``S3Site``, the Klein app, the engine with
worker threads and the store on a temporary directory (fsync off for speed;
durability is the crash tests' business). Clients such as boto3 are blocking,
so tests call them in a thread with ``deferToThread`` while the reactor serves.
"""

from __future__ import annotations

import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import deferLater

from s4d.admin.app import PUBLIC_PATHS, OpsApp
from s4d.engine import Engine
from s4d.s3.assembly import build_s3_site
from s4d.s3.front import StaticCredentials
from s4d.s3.request import ConnectionLimits
from s4d.store.store import Store, StoreConfig
from s4d.util.threads import ExecutorRunner, FutureBridge

ACCESS_KEY = "AKIDTESTS4D"
SECRET_KEY = "secret/key+for+tests"


class InProcessServer:
    """Start with :meth:`start`, stop with :meth:`stop` (returns a Deferred)."""

    def __init__(self, limits: ConnectionLimits | None = None, **front_options: Any) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="s4d-test-")
        self.store = Store(StoreConfig(self.data_dir, fsync=False, map_size=1 << 30))
        self.runner = ExecutorRunner(FutureBridge(reactor.callFromThread), 4, name="test-io")
        self.engine = Engine(self.store, self.runner, reactor.callFromThread)
        front_options.setdefault("clock", reactor)
        self.site = build_s3_site(
            self.engine,
            StaticCredentials({ACCESS_KEY: SECRET_KEY}),
            ops=OpsApp().resource(),
            public_paths=PUBLIC_PATHS,
            limits=limits,
            **front_options,
        )
        self.port: Any = None

    def start(self) -> str:
        """Listen on a free loopback port; return the endpoint URL."""
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        return self.url

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port.getHost().port}"

    def stop(self) -> Deferred[None]:
        """Stop listening, then close the store."""
        d = maybeDeferred(self.port.stopListening)
        self.site.close_connections()

        def close(_: object) -> Deferred[None]:
            self.runner.stop()
            self.store.close()
            return deferLater(reactor, 0, lambda: None)

        return d.addCallback(close)


def boto3_client(url: str, **config: Any) -> Any:
    """A boto3 S3 client for ``url`` with the test credentials (path style)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )
