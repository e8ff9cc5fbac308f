"""CORS in a real browser: headless Chromium obeys s4d's answers.

Strategy: a real ``twistd s4`` serves the bucket; two small HTTP servers on
other loopback ports serve the same page, so they are two other origins. The
bucket's CORS rules allow the first (GET and PUT, ``ETag`` exposed) and not
the second. Debian's ``chromium`` runs headless and is driven over the Chrome
DevTools Protocol (:mod:`tests.clients.cdp`): it loads the page from each
origin and runs the page's script there, which ``fetch()``\\ es an object
through a presigned GET URL and uploads through a presigned PUT URL (a PUT is
not a simple request: the browser sends its preflight ``OPTIONS`` to the
presigned URL first, unsigned). From the allowed origin both succeed, the
exposed ETag is readable and the upload lands; from the other the browser
blocks both (``fetch`` rejects) and nothing is uploaded. The test is skipped
only when no Chromium is installed; ``.ci/run`` installs Debian's and
makes a missing one a failure (``S4D_REQUIRE_CHROMIUM``).
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twisted.trial.unittest import SkipTest

from tests.clients.cdp import Browser, find_chromium
from tests.clients.harness import ServerTestCase, boto3_client, md5_hex

PAGE = b"<!doctype html><html><head><title>s4d CORS</title></head><body>page</body></html>"

SCRIPT = """
(async () => {
  const out = {};
  try {
    const r = await fetch(%(get)s);
    out.get = {status: r.status, body: await r.text(), etag: r.headers.get("ETag")};
  } catch (e) { out.get = {error: String(e)}; }
  try {
    const r = await fetch(%(put)s, {method: "PUT", body: "from " + location.origin,
                                    headers: {"Content-Type": "text/plain"}});
    out.put = {status: r.status};
    if (r.status !== 200) { out.put.body = await r.text(); }
  } catch (e) { out.put = {error: String(e)}; }
  return JSON.stringify(out);
})()
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def page_server() -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port serving the page (a separate origin)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class BrowserCorsTests(ServerTestCase):
    def test_allowed_origin_succeeds_other_is_blocked(self) -> None:
        binary = find_chromium()
        if binary is None:
            if os.environ.get("S4D_REQUIRE_CHROMIUM"):
                self.fail("no chromium installed, and S4D_REQUIRE_CHROMIUM is set (.ci/run)")
            raise SkipTest("no chromium installed (apt-get install chromium; .ci/run does)")
        assert self.server is not None
        s3 = boto3_client(self.server, os.path.join(self.tmp, "home"), signature_version="s3v4")
        bucket = self.bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello, browser")
        allowed, other = page_server(), page_server()
        self.addCleanup(allowed.shutdown)
        self.addCleanup(other.shutdown)
        allowed_origin = f"http://127.0.0.1:{allowed.server_address[1]}"
        other_origin = f"http://127.0.0.1:{other.server_address[1]}"
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [allowed_origin],
                        "AllowedMethods": ["GET", "PUT"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 0,
                    }
                ]
            },
        )
        browser = Browser(binary)
        self.addCleanup(browser.close)
        page = browser.new_page()
        self.addCleanup(page.close)

        def run_from(origin: str, key: str) -> dict[str, Any]:
            get = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}
            )
            put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key})
            page.navigate(f"{origin}/page.html")
            script = SCRIPT % {"get": json.dumps(get), "put": json.dumps(put)}
            return json.loads(page.evaluate(script))  # type: ignore[no-any-return]

        good = run_from(allowed_origin, "from-allowed.txt")
        self.assertEqual(
            good["get"],
            {"status": 200, "body": "hello, browser", "etag": f'"{md5_hex(b"hello, browser")}"'},
        )
        self.assertEqual(good["put"], {"status": 200})
        landed = s3.get_object(Bucket=bucket, Key="from-allowed.txt")["Body"].read()
        self.assertEqual(landed, f"from {allowed_origin}".encode())

        bad = run_from(other_origin, "from-other.txt")
        self.assertIn("error", bad["get"], bad)
        self.assertIn("error", bad["put"], bad)
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        self.assertEqual(listed, ["from-allowed.txt", "hello.txt"])
