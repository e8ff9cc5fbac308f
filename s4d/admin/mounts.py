"""Several admin surfaces under one ops resource, each at its own path prefixes.

The ops app (:class:`s4d.admin.app.OpsApp`) answers health checks itself and
hands whole path prefixes to surfaces built as Klein apps of their own
(``/api/admin/users`` ... to :class:`s4d.admin.users.IdentityApi`), so each
surface lives in its own module with its own collaborators. A surface sees the
full request path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.web.resource import IResource, Resource


class Mounted(Resource):
    """Renders the surface whose prefix the path has, else ``fallback``.

    :param mounts: ``(prefixes, resource)`` pairs; a prefix matches the path itself
        and every path below it.
    """

    isLeaf = True

    def __init__(
        self, fallback: IResource, mounts: Sequence[tuple[Sequence[bytes], IResource]]
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.fallback = fallback
        self.mounts = [(tuple(prefixes), resource) for prefixes, resource in mounts]

    def render(self, request: Any) -> Any:
        """Render with the surface that serves this path."""
        path = (request.path or b"/").rstrip(b"/") or b"/"
        for prefixes, resource in self.mounts:
            for prefix in prefixes:
                if path == prefix or path.startswith(prefix + b"/"):
                    return resource.render(request)  # type: ignore[no-untyped-call]
        return self.fallback.render(request)  # type: ignore[no-untyped-call]
