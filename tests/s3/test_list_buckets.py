"""ListBuckets, whole and in pages (``max-buckets``, ``continuation-token``, ``prefix``,
``bucket-region``), as AWS documents it.

Strategy: the page rules and the refused arguments run in memory
(:class:`~tests.s3.memory.MemoryS3`, raw signed requests, the XML read back);
boto3's ``list_buckets`` and its paginator run against a loopback server
(:class:`~tests.s3.test_api.S3TestCase`), since the client decides whether
``ContinuationToken`` means "more to come".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from twisted.trial.unittest import SynchronousTestCase

from tests.s3.memory import MemoryResponse, MemoryS3
from tests.s3.test_api import S3TestCase, error_code

NAMES = ["alpha", "alpha-2", "beta", "gamma.one", "gamma.two"]


def elements(got: MemoryResponse, tag: str) -> list[str]:
    return [
        m.decode()
        for m in re.findall(rb"<%s>([^<]*)</%s>" % (tag.encode(), tag.encode()), got.body)
    ]


class ListBucketsPagesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.s3 = MemoryS3()
        self.addCleanup(self.s3.close)
        for name in reversed(NAMES):
            self.assertEqual(self.s3.request("PUT", f"/{name}").status, 200)

    def list(self, query: str = "") -> MemoryResponse:
        got = self.s3.request("GET", "/" + (f"?{query}" if query else ""))
        self.assertEqual(got.status, 200, got.body)
        return got

    def test_without_parameters_every_bucket_and_no_region(self) -> None:
        got = self.list()
        self.assertEqual(elements(got, "Name"), NAMES)
        self.assertEqual(elements(got, "ContinuationToken"), [])
        self.assertNotIn(b"<BucketRegion>", got.body)
        self.assertNotIn(b"<Prefix>", got.body)

    def test_pages_of_one_walk_every_bucket_once(self) -> None:
        seen: list[str] = []
        query = "max-buckets=1"
        for _ in range(len(NAMES) + 1):
            got = self.list(query)
            seen += elements(got, "Name")
            self.assertEqual(elements(got, "BucketRegion"), ["us-east-1"])
            tokens = elements(got, "ContinuationToken")
            if not tokens:
                break
            query = f"max-buckets=1&continuation-token={quote(tokens[0], safe='')}"
        self.assertEqual(seen, NAMES)

    def test_the_last_full_page_has_no_token(self) -> None:
        got = self.list(f"max-buckets={len(NAMES)}")
        self.assertEqual(elements(got, "Name"), NAMES)
        self.assertEqual(elements(got, "ContinuationToken"), [])
        got = self.list("max-buckets=2")
        self.assertEqual(elements(got, "Name"), NAMES[:2])
        self.assertEqual(len(elements(got, "ContinuationToken")), 1)

    def test_prefix_is_echoed_and_pages_stay_inside_it(self) -> None:
        got = self.list("prefix=gamma.&max-buckets=1")
        self.assertEqual(
            (elements(got, "Name"), elements(got, "Prefix")), (["gamma.one"], ["gamma."])
        )
        token = quote(elements(got, "ContinuationToken")[0], safe="")
        got = self.list(f"prefix=gamma.&max-buckets=1&continuation-token={token}")
        self.assertEqual(elements(got, "Name"), ["gamma.two"])
        self.assertEqual(elements(got, "ContinuationToken"), [])
        got = self.list("prefix=delta")
        self.assertEqual((elements(got, "Name"), elements(got, "Prefix")), ([], ["delta"]))

    def test_bucket_region(self) -> None:
        self.assertEqual(elements(self.list("bucket-region=us-east-1"), "Name"), NAMES)
        self.assertEqual(elements(self.list("bucket-region=eu-west-1"), "Name"), [])

    def test_refused_arguments(self) -> None:
        for query in ("max-buckets=0", "max-buckets=10001", "max-buckets=x", "max-buckets=-1",
                      "continuation-token=nonsense", "max-buckets=%C2%B2"):  # fmt: skip
            got = self.s3.request("GET", f"/?{query}")
            self.assertEqual((got.status, got.code()), (400, "InvalidArgument"), query)
        self.assertEqual(elements(self.list("max-buckets=10000"), "Name"), NAMES)


class ListBucketsBoto3Tests(S3TestCase):
    async def test_list_buckets_in_pages(self) -> None:
        """s3-tests test_list_buckets_paginated, and boto3's paginator."""
        empty = await self.call(self.s3.list_buckets, MaxBuckets=1)
        self.assertEqual((empty["Buckets"], "ContinuationToken" in empty), ([], False))
        for name in NAMES:
            await self.call(self.s3.create_bucket, Bucket=name)
        first = await self.call(self.s3.list_buckets, MaxBuckets=2)
        self.assertEqual([b["Name"] for b in first["Buckets"]], NAMES[:2])
        self.assertEqual(first["Buckets"][0]["BucketRegion"], "us-east-1")
        second = await self.call(
            self.s3.list_buckets, MaxBuckets=2, ContinuationToken=first["ContinuationToken"]
        )
        self.assertEqual([b["Name"] for b in second["Buckets"]], NAMES[2:4])

        def paginate(**kwargs: Any) -> list[list[str]]:
            pages = self.s3.get_paginator("list_buckets").paginate(**kwargs)
            return [[b["Name"] for b in page["Buckets"]] for page in pages]

        pages = await self.call(paginate, PaginationConfig={"PageSize": 2})
        self.assertEqual(pages, [NAMES[:2], NAMES[2:4], NAMES[4:]])
        pages = await self.call(paginate, Prefix="gamma", PaginationConfig={"PageSize": 1})
        self.assertEqual(pages, [["gamma.one"], ["gamma.two"]])
        everything = await self.call(self.s3.list_buckets)
        self.assertEqual([b["Name"] for b in everything["Buckets"]], NAMES)
        e = await self.client_error(self.s3.list_buckets, MaxBuckets=10001)
        self.assertEqual(error_code(e), "InvalidArgument")
