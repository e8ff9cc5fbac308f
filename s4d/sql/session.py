"""DataFusion for one query: a context that can reach nothing but the query's tables.

Each query gets its own ``SessionContext``:

- its memory pool is ``S4_SELECT_MAX_MEMORY`` (a fair spill pool: sorts,
  aggregates and joins that need more spill to temporary files where
  DataFusion can, and fail with "Resources exhausted" where it cannot);
- no ``information_schema``, no URL tables, no recursive CTEs, the table
  functions ``generate_series`` and ``range`` removed; the only tables are the
  query's own pyarrow datasets over the store;
- statements are planned with DDL, DML and other statements refused
  (``CREATE [EXTERNAL] TABLE``, ``COPY``, ``INSERT``, ``SET`` ...), and the
  physical plan is checked node by node: its leaves may only be the query's
  datasets, constant rows (``VALUES``, ``SELECT 1``) and empty relations; a
  plan reading anything else (a file, a listing table) is refused.
"""

from __future__ import annotations

import os
from typing import Any

from datafusion import (
    DataFrame,
    ExecutionPlan,
    RuntimeEnvBuilder,
    SessionConfig,
    SessionContext,
    SQLOptions,
)

from s4d.errors import S3Error
from s4d.sql.functions import s3_functions

#: Table functions DataFusion registers by default (rows out of nothing: not allowed).
TABLE_FUNCTIONS = ("generate_series", "range")
#: Physical plan leaves a query may have besides its own datasets.
CONSTANT_LEAVES = ("PlaceholderRowExec", "EmptyExec")
#: Logical plan roots that are queries (anything else is a statement).
QUERY_ROOTS = frozenset(
    {
        "Projection", "Filter", "Window", "Aggregate", "Sort", "Join", "Repartition", "Union",
        "TableScan", "EmptyRelation", "Limit", "SubqueryAlias", "Distinct", "Values", "Unnest",
    }
)  # fmt: skip


def new_context(max_memory: int, partitions: int | None = None) -> SessionContext:
    """A context with a memory pool of ``max_memory`` bytes and nothing registered."""
    config = (
        SessionConfig()
        .with_information_schema(False)
        .with_target_partitions(partitions or max(1, os.cpu_count() or 1))
        .with_batch_size(8192)
        .set("datafusion.sql_parser.enable_ident_normalization", "false")
        .set("datafusion.execution.enable_recursive_ctes", "false")
    )
    runtime = RuntimeEnvBuilder().with_fair_spill_pool(max_memory).with_disk_manager_os()
    context = SessionContext(config, runtime)
    for name in TABLE_FUNCTIONS:
        context.deregister_udtf(name)
    for function in s3_functions():
        context.register_udf(function)
    return context


def statement_options() -> SQLOptions:
    """Planning options that refuse everything but queries."""
    return SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)


def _kind(plan: ExecutionPlan) -> str:
    text: str = plan.display()
    return text.split(":", 1)[0].split(",", 1)[0].strip()


def check_plan(frame: DataFrame) -> None:
    """Refuse a planned statement that is not a query or reads anything but datasets."""
    root = type(frame.logical_plan().to_variant()).__name__
    if root not in QUERY_ROOTS:
        raise S3Error("UnsupportedSqlOperation", f"Only queries are allowed ({root}).")
    _check_physical(frame.execution_plan())


def _check_physical(plan: ExecutionPlan) -> None:
    children: list[Any] = plan.children()
    kind = _kind(plan)
    if any(word in kind for word in ("Sink", "Copy", "Insert", "Write")):
        raise S3Error("UnsupportedSqlOperation", f"The query would write ({kind}).")
    if not children:
        text: str = plan.display()
        if kind == "DatasetExec":
            return
        if kind in CONSTANT_LEAVES:
            return
        if kind == "DataSourceExec" and "file_groups" not in text and "partition_sizes" in text:
            return  # constant rows (VALUES) held in memory
        raise S3Error("UnsupportedSqlOperation", f"The query may only read its objects ({kind}).")
    for child in children:
        _check_physical(child)
