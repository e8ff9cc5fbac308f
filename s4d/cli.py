"""The ``s4d`` command: maintenance subcommands for a data directory.

``s4d fsck DATA_DIR`` checks a data directory (see :mod:`s4d.store.fsck`). Each
subcommand is a module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
adding one is one line in :data:`COMMANDS`. The server itself runs under
``twistd s4``, not here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import s4d

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fsck": ("s4d.store.fsck", "check a data directory for damage and inconsistency"),
    "stats": ("s4d.store.stats", "print storage statistics (dedup, compression, dead bytes)"),
    "compact": ("s4d.store.compaction", "reclaim dead space: copy live chunks, delete segments"),
    "scrub": ("s4d.store.scrub", "re-read every stored chunk and report damaged ones"),
    "config-reference": ("s4d.config", "print the configuration reference (README's table)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``s4d`` command and all its subcommands."""
    parser = argparse.ArgumentParser(prog="s4d", description="s4d maintenance commands.")
    parser.add_argument("--version", action="version", version=f"s4d {s4d.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name, help=help_text, description=(module.__doc__ or help_text).strip().split("\n")[0]
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit status.

    A reader that goes away early (``s4d stats --json | head -1``) ends the
    command quietly, as it does for other Unix tools.
    """
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
