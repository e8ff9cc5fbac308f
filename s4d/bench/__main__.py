"""Entry point: ``python -m s4d.bench NAME [options]``, one benchmark a name."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a benchmark."""
    args = sys.argv[1:] if argv is None else argv
    names = (
        "engine", "s3", "rename", "dedup", "multipart", "soak", "routing", "versions", "lifecycle",
        "select", "users", "metadata",
    )  # fmt: skip
    if not args or args[0] not in names:
        print(f"usage: python -m s4d.bench {{{','.join(names)}}} [options]  (--help for each)")
        return 2
    if args[0] == "metadata":
        from s4d.bench import metadata

        return metadata.main(args[1:])
    if args[0] == "users":
        from s4d.bench import users

        return users.main(args[1:])
    if args[0] == "select":
        from s4d.bench import select

        return select.main(args[1:])
    if args[0] == "versions":
        from s4d.bench import versions

        return versions.main(args[1:])
    if args[0] == "lifecycle":
        from s4d.bench import lifecycle

        return lifecycle.main(args[1:])
    if args[0] == "routing":
        from s4d.bench import routing

        return routing.main(args[1:])
    if args[0] == "soak":
        from s4d.bench import soak

        return soak.main(args[1:])
    if args[0] == "multipart":
        from s4d.bench import multipart

        return multipart.main(args[1:])
    if args[0] == "dedup":
        from s4d.bench import dedup

        return dedup.main(args[1:])
    if args[0] == "rename":
        from s4d.bench import rename

        return rename.main(args[1:])
    if args[0] == "engine":
        from s4d.bench import engine

        return engine.main(args[1:])
    from s4d.bench import s3

    return s3.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
