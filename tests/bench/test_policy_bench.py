"""The policy benchmark: its policies are what it says they are, and a small run completes.

Strategy: the large policy is checked for its size (about 20 KB, within the
limit) and statement count, and both policies compile; the requests get the
answers the benchmark's docstring promises (so it measures an allowed GET, an
anonymous GET and a refused PUT, not three refusals); then ``main`` runs with
tiny counts, through ``python -m s4d.bench``'s dispatcher, and prints a row per
request.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.policy import MAX_POLICY_BYTES, Effect, compile_policy
from s4d.bench import policy as bench
from s4d.bench.__main__ import main as dispatch


class PolicyBenchTests(SynchronousTestCase):
    def test_the_policies(self) -> None:
        document = bench.large_policy()
        self.assertEqual(len(json.loads(document)["Statement"]), 100)
        self.assertGreater(len(document), 19 * 1024)
        self.assertLessEqual(len(document), MAX_POLICY_BYTES)
        large = compile_policy(document, bench.BUCKET)
        small = compile_policy(bench.small_policy(), bench.BUCKET)
        asked = bench.requests()
        self.assertEqual(large.evaluate(asked["user GET"]), Effect.ALLOW)
        self.assertEqual(large.evaluate(asked["anonymous GET"]), Effect.ALLOW)
        self.assertIsNone(large.evaluate(asked["refused PUT"]))
        self.assertEqual(small.evaluate(asked["anonymous GET"]), Effect.ALLOW)

    def test_a_small_run(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            status = dispatch(["policy", "--evaluations", "20", "--rounds", "1"])
        self.assertEqual(status, 0)
        text = out.getvalue()
        for label in ("user GET", "anonymous GET", "refused PUT", "100 statements"):
            self.assertIn(label, text)
