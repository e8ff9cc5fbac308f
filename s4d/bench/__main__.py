"""Entry point: ``python -m s4d.bench NAME [options]``, one benchmark a name.

Each name is a module of :mod:`s4d.bench` with a ``main(argv) -> int``; it is
imported only when asked for (some pull in pyarrow or DataFusion).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

#: The benchmarks, each a module of this package.
NAMES = (
    "engine", "s3", "rename", "dedup", "multipart", "soak", "routing", "versions", "lifecycle",
    "select", "users", "commits", "policy", "metadata",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a benchmark."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in NAMES:
        print(f"usage: python -m s4d.bench {{{','.join(NAMES)}}} [options]  (--help for each)")
        return 2
    module = importlib.import_module(f"s4d.bench.{args[0]}")
    run: Callable[[list[str]], int] = module.main
    return run(args[1:])


if __name__ == "__main__":
    sys.exit(main())
