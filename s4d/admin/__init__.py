"""Everything served that is not the S3 API: health probes, the admin API, stats, metrics.

:mod:`s4d.admin.app` (the ops app and the rule that routes to it),
:mod:`~s4d.admin.ops_api` (the admin data routes), :mod:`~s4d.admin.metrics`
(``/metrics``), :mod:`~s4d.admin.figures` (the running figures of every
process), :mod:`~s4d.admin.access_log`, :mod:`~s4d.admin.jsonapi` (JSON in and
out, errors) and :mod:`~s4d.admin.guard` (who may call).
"""
