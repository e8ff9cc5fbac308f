"""The ``config`` sub-database: settings of the data directory (its schema version, ...)."""

from __future__ import annotations

from s4d.store.schema import SCHEMA_KEY, read_schema_version
from s4d.store.views.base import View


class SettingsView(View):
    """Free-form settings of the data directory, keyed by name."""

    def get(self, name: bytes) -> bytes | None:
        """The setting ``name``, or None."""
        return self.txn.get(name, db=self.db)

    def put(self, name: bytes, value: bytes) -> None:
        """Store the setting ``name``."""
        if name == SCHEMA_KEY:
            raise ValueError("the schema version is written by upgrades only")
        self.txn.put(name, value, db=self.db)

    def schema_version(self) -> int:
        """The data directory's schema version (0: written before versions existed)."""
        return read_schema_version(self.txn, self.db)
