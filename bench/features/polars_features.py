"""The polars + scikit-learn baseline for bench/features: the same point-in-time rows as the pandas
baseline (pandas_features.py) and Driftwood's build, computed with polars' lazy, multi-threaded
group-by and joins, then the same scikit-learn ColumnTransformer, fitted on and applied to the polars
frame. Reading the customers' and labels' CSV files is not timed, as for pandas; the events are
scanned inside the timed build from the same Parquet files the DuckDB engine reads (polars pushes
the window's filter and the columns down into the scan). After the timed steps the table is compared
with Driftwood's the same way pandas' is. Prints one JSON object with wall and CPU times (CPU over all
of polars' threads)."""

from __future__ import annotations

import json
import resource
import sys

import pandas as pd
import polars as pl
from pandas_features import CATEGORICAL, DAY, HOUR, NUMERIC, compare, timed, transformer

COUNTS = [
    "sessions_3d", "sessions_7d", "sessions_30d", "sessions_90d", "sessions_prev30", "minutes_7d",
    "minutes_30d", "minutes_90d", "purchases_30d", "spend_30d", "spend_90d", "tickets_7d", "tickets_30d",
    "tickets_90d", "payment_failures_30d", "payment_failures_90d",
]  # fmt: skip


def build(
    customers: pl.DataFrame, events: pl.LazyFrame, labels: pl.DataFrame, cutoff: int, horizon_hours: int
) -> pl.DataFrame:
    t, kind, value = pl.col("event_time"), pl.col("event_type"), pl.col("value")

    def since(days: int) -> pl.Expr:
        return t >= cutoff - days * DAY

    session, purchase = kind == "session", kind == "purchase"
    ticket, failure = kind == "support_ticket", kind == "payment_failure"
    aggregates = [
        *((session & since(d)).sum().alias(f"sessions_{d}d") for d in (3, 7, 30, 90)),
        (session & since(37) & ~since(7)).sum().alias("sessions_prev30"),
        *(value.filter(session & since(d)).sum().alias(f"minutes_{d}d") for d in (7, 30, 90)),
        (purchase & since(30)).sum().alias("purchases_30d"),
        value.filter(purchase & since(30)).sum().alias("spend_30d"),
        value.filter(purchase).sum().alias("spend_90d"),
        *((ticket & since(d)).sum().alias(f"tickets_{d}d") for d in (7, 30, 90)),
        (failure & since(30)).sum().alias("payment_failures_30d"),
        failure.sum().alias("payment_failures_90d"),
        t.filter(session).max().alias("last_session_at"),
        t.filter(purchase).max().alias("last_purchase_at"),
    ]
    agg = events.filter((t >= cutoff - 90 * DAY) & (t < cutoff)).group_by("customer_id").agg(aggregates)
    churned = pl.col("churned_at")
    active = (
        customers.lazy()
        .filter(pl.col("signup_at") < cutoff)
        .join(labels.lazy(), on="customer_id", how="left")
        .filter(churned.is_null() | (churned >= cutoff))
    )
    sessions_30d = pl.col("sessions_30d")
    return (
        active.join(agg, on="customer_id", how="left")
        .with_columns(pl.col(COUNTS).fill_null(0))
        .with_columns(
            tenure_days=(cutoff - pl.col("signup_at")) / DAY,
            avg_session_minutes_30d=pl.when(sessions_30d > 0).then(pl.col("minutes_30d") / sessions_30d),
            hours_since_last_session=(cutoff - pl.col("last_session_at")) / HOUR,
            days_since_last_purchase=(cutoff - pl.col("last_purchase_at")) / DAY,
            session_rate_trend=pl.col("sessions_7d") / 7 - pl.col("sessions_prev30") / 30,
            label=(churned < cutoff + horizon_hours * HOUR).fill_null(False).cast(pl.Int64),
        )
        .sort("customer_id")
        .collect()
    )


def as_pandas(table: pl.DataFrame) -> pd.DataFrame:
    """The table as pandas for the comparison, column by column (no pyarrow needed)."""
    frame = pd.DataFrame({name: table[name].to_numpy() for name in ["label", *NUMERIC, *CATEGORICAL]})
    return frame.set_index(pd.Index(table["customer_id"].to_numpy(), name="customer_id"))


def main() -> None:
    folder, cutoff, horizon_hours, driftwood_table = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    events_files = sys.argv[5].split(",")
    customers = pl.read_csv(f"{folder}/customers.csv")
    labels = pl.read_csv(f"{folder}/labels.csv")
    table, build_t = timed(
        lambda: build(customers, pl.scan_parquet(events_files), labels, cutoff, horizon_hours)
    )
    columns = table.select([*NUMERIC, *CATEGORICAL])
    fitted = transformer()
    _, fit_t = timed(lambda: fitted.fit(columns))
    matrix, transform_t = timed(lambda: fitted.transform(columns))
    steps = (build_t, fit_t, transform_t)
    print(
        json.dumps(
            {
                "build": build_t,
                "fit": fit_t,
                "transform": transform_t,
                "total": {key: sum(step[key] for step in steps) for key in ("wall", "cpu")},
                "rows": int(matrix.shape[0]),
                "columns": int(matrix.shape[1]),
                "rssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000),
                "threads": pl.thread_pool_size(),
                "differences": compare(as_pandas(table), driftwood_table),
            }
        )
    )


if __name__ == "__main__":
    main()
