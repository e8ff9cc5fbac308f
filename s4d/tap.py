"""twistd integration: ``twistd -n s4`` options and the service they make.

The options are generated from :data:`s4d.config.SETTINGS`, so ``twistd s4
--help`` lists exactly what the configuration reference in ``README.rst`` does.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

import s4d
from s4d import config as s4config

log = Logger()


def _help(setting: s4config.Setting) -> str:
    where = [setting.env] if setting.env else []
    default = setting.default_doc or setting.default
    if default and not default.startswith("("):
        where.append(f"default {default.replace('``', '')}")
    return f"{setting.help} ({', '.join(where)})" if where else setting.help


def option_parameters() -> list[list[Any]]:
    """twistd's ``optParameters``: one per implemented setting that has an option."""
    return [
        [s.option, s.short, None, _help(s)] for s in s4config.SETTINGS if s.implemented and s.option
    ]


class Options(usage.Options):
    """Command-line options; each overrides the S4_* variable of the same meaning."""

    synopsis = "[options]"
    longdesc = (
        f"s4d {s4d.__version__}: an S3-compatible object store. Each option overrides "
        "the S4_* environment variable named in its help; README.rst lists them all."
    )
    optParameters = option_parameters()
    optFlags = [["check", None, "check the data directory (fsck) and exit"]]

    def opt_version(self) -> None:
        """Print s4d's version and exit."""
        print(f"s4d {s4d.__version__}")
        sys.exit(0)


def makeService(options: Any) -> service.IService:
    """Build the s4d service from twistd options."""
    cfg = s4config.build({k: v for k, v in options.items() if k != "check"})
    for name in s4config.reserved_in_use():
        log.warn("{name} is reserved and not implemented yet: it does nothing", name=name)
    if options.get("check"):
        from s4d.store import fsck

        sys.exit(fsck.main([cfg.data_dir]))
    from s4d.service import make_service

    return make_service(cfg)
