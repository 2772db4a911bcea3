"""Grafana's PostgreSQL macros, expanded the way Grafana expands them, so that dashboard SQL
can run against a real database in tests (Grafana docs: "PostgreSQL data source", macros)."""

from __future__ import annotations

import re
from datetime import datetime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(interval: str) -> int:
    match = re.fullmatch(r"'?(\d+)([smhd])'?", interval.strip())
    if not match:
        raise ValueError(f"unsupported interval {interval!r}")
    return int(match[1]) * _UNITS[match[2]]


def expand(
    sql: str,
    start: datetime,
    end: datetime,
    variables: dict[str, str],
    *,
    timescaledb: bool,
    interval: str = "1m",
) -> str:
    frm, to = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    sql = sql.replace("$__interval", interval)
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}}}", value).replace(f"${name}", value)

    def group(match: re.Match[str]) -> str:
        column, width = match[1].strip(), seconds(match[2])
        if timescaledb:
            return f"time_bucket('{width}s', {column}) AS \"time\""
        return f'floor(extract(epoch from {column})/{width})*{width} AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)", group, sql)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {frm} AND {to}", sql)
    sql = sql.replace("$__timeFrom()", frm).replace("$__timeTo()", to)
    if "$" in sql:
        raise ValueError(f"unexpanded macro or variable in: {sql}")
    return sql
