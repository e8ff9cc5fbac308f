"""S3 Select and multi-object SQL, on Apache DataFusion, streaming.

The S3 layer (:mod:`s4d.s3.handlers.select`) asks :class:`~s4d.sql.queries.QueryService`
to run a query and writes its output as the client reads it. The package's
parts, each with one job:

- :mod:`~s4d.sql.request`: what a query asks for (AWS's request document, ``?sql``'s JSON);
- :mod:`~s4d.sql.dialect`: S3 Select's SQL dialect rewritten into DataFusion's;
- :mod:`~s4d.sql.globs`: ``?sql``'s globs, listing only their literal prefix;
- :mod:`~s4d.sql.objects`, :mod:`~s4d.sql.streams`, :mod:`~s4d.sql.inputs`: objects
  read through the engine's facades and shaped into pyarrow datasets;
- :mod:`~s4d.sql.session`, :mod:`~s4d.sql.functions`: a DataFusion context that
  reaches nothing but the query's tables, and S3 Select's functions;
- :mod:`~s4d.sql.output`, :mod:`~s4d.sql.eventstream`: CSV and JSON, AWS's event stream;
- :mod:`~s4d.sql.control`, :mod:`~s4d.sql.channel`, :mod:`~s4d.sql.runner`,
  :mod:`~s4d.sql.queries`: one query's life on its thread, and the service.

Queries read objects only through :mod:`s4d.engine`, never the store.
"""
