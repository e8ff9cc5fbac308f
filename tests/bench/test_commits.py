"""The commit-path benchmark runs end to end: two processes share one store's commits.

It checks what the run itself can prove, not speed: the line of figures comes
out, with each process's explicit syncs and the waits answered without one.
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from s4d.bench import commits


class CommitsBenchTests(SynchronousTestCase):
    def test_two_processes_run_and_report(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(
                commits.main(["--procs", "2", "--threads", "2", "--seconds", "0.5"]), 0
            )
        line = out.getvalue()
        self.assertIn("2 processes x 2 writers", line)
        match = re.search(r"covered without one (\d+)/(\d+), (\d+)/(\d+)", line)
        assert match is not None, line
        syncs_and_waits = [int(g) for g in match.groups()]
        self.assertGreater(sum(syncs_and_waits), 0)
