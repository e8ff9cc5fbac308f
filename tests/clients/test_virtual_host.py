"""Virtual-host style (``bucket.s4.test:PORT``) with boto3, the server run with ``S4_DOMAIN``.

``s4.test`` resolves nowhere, so these tests patch name resolution in the test
process alone (trial undoes the patch after each test): any name under it
goes to 127.0.0.1. The server is a separate process and sees only the
``Host`` header, exactly as with real DNS. The TLS certificate covers
``*.s4.test``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from tests.clients.harness import VHOST_DOMAIN, ServerTestCase, boto3_client, payload, sha256

_real_getaddrinfo = socket.getaddrinfo


def _loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, str) and (host == VHOST_DOMAIN or host.endswith("." + VHOST_DOMAIN)):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


class VirtualHostTests(ServerTestCase):
    """boto3 with ``addressing_style = virtual`` over plain HTTP."""

    server_env = {"S4_DOMAIN": VHOST_DOMAIN}

    def setUp(self) -> None:
        super().setUp()
        self.patch(socket, "getaddrinfo", _loopback_getaddrinfo)
        assert self.server is not None
        self.endpoint = f"{self.server.scheme}://{VHOST_DOMAIN}:{self.server.port}"
        self.s3 = self.client()
        self.urls: list[str] = []
        self.s3.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        self.urls.append(request.url)

    def client(self, **config: Any) -> Any:
        assert self.server is not None
        return boto3_client(
            self.server,
            os.path.join(self.tmp, "home"),
            endpoint=self.endpoint,
            s3={"addressing_style": "virtual"},
            **config,
        )

    def test_objects_and_listing(self) -> None:
        """Create, put awkward keys, get, list, copy, delete in bulk, all by Host header."""
        bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=bucket)
        self.assertTrue(
            self.urls[-1].startswith(f"{self.server.scheme}://{bucket}.{VHOST_DOMAIN}:")
        )
        bodies = {
            key: payload(5000 + i, seed=60 + i)
            for i, key in enumerate(
                ["plain", "with space+plus", "a//b/", "ü/日本", "/leading", "trailing/"]
            )
        }
        for key, body in bodies.items():
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        for key, body in bodies.items():
            got = self.s3.get_object(Bucket=bucket, Key=key)
            self.assertEqual(sha256(got["Body"].read()), sha256(body), key)
        expected = sorted(bodies, key=lambda k: k.encode())
        self.assertEqual(
            [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket)["Contents"]], expected
        )
        self.assertEqual(
            [o["Key"] for o in self.s3.list_objects(Bucket=bucket)["Contents"]], expected
        )
        self.s3.copy_object(
            Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "a//b/"}
        )
        self.assertEqual(
            sha256(self.s3.get_object(Bucket=bucket, Key="copy")["Body"].read()),
            sha256(bodies["a//b/"]),
        )
        self.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in [*bodies, "copy"]]}
        )
        self.assertEqual(self.s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0)
        self.s3.delete_bucket(Bucket=bucket)

    def test_presigned_and_path_style_side_by_side(self) -> None:
        """Presigned URLs (SigV2 and SigV4) on the bucket host; path style still works."""
        bucket = self.bucket_name()
        self.s3.create_bucket(Bucket=bucket)
        body = payload(9000, seed=70)
        key = "pre signed+ü//x"
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        for client in (self.s3, self.client(signature_version="s3v4")):
            url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
            self.assertIn(f"{bucket}.{VHOST_DOMAIN}", url)
            status, data = self.urlopen(url)
            self.assertEqual(status, 200, data[:300])
            self.assertEqual(sha256(data), sha256(body))
        path_style = boto3_client(self.server, os.path.join(self.tmp, "home"))
        got = path_style.get_object(Bucket=bucket, Key=key)
        self.assertEqual(sha256(got["Body"].read()), sha256(body))


class VirtualHostTLSTests(VirtualHostTests):
    """The same over HTTPS (aws-chunked uploads), the certificate naming ``*.s4.test``."""

    tls = True
