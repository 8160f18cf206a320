"""The pandas + scikit-learn baseline for bench/features: the same point-in-time rows as
tasks/src/features/churn-builder.ts (the same aggregates and windows, customers gone before the
cutoff left out, the churn label), then a ColumnTransformer (median imputation with missing
indicators + standard scaling; most-frequent imputation + one-hot with a minimum frequency and an
infrequent bucket). Reading the customers' and labels' CSV files is not timed, as loading the
warehouse is not timed for Driftwood; the events are read inside the timed build from the same
Parquet files the DuckDB engine reads (through pyarrow, only the columns and the 90-day window).
After the timed steps the table is compared with Driftwood's (given as a CSV file), so both sides
provably did the same work. Prints one JSON object with wall and CPU times."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

DAY = 86_400_000
HOUR = 3_600_000
T = TypeVar("T")


def build(
    customers: pd.DataFrame, events: pd.DataFrame, labels: pd.DataFrame, cutoff: int, horizon_hours: int
) -> pd.DataFrame:
    ev = events[(events.event_time >= cutoff - 90 * DAY) & (events.event_time < cutoff)]
    t = ev.event_time.to_numpy()
    kind = ev.event_type.to_numpy()
    val = ev.value.to_numpy()
    cols: dict[str, np.ndarray] = {}

    def since(days: int) -> np.ndarray:
        return t >= cutoff - days * DAY

    session, purchase = kind == "session", kind == "purchase"
    ticket, failure = kind == "support_ticket", kind == "payment_failure"
    for d in (3, 7, 30, 90):
        cols[f"sessions_{d}d"] = (session & since(d)).astype(np.int64)
    cols["sessions_prev30"] = (session & since(37) & ~since(7)).astype(np.int64)
    for d in (7, 30, 90):
        cols[f"minutes_{d}d"] = np.where(session & since(d), val, 0.0)
    cols["purchases_30d"] = (purchase & since(30)).astype(np.int64)
    cols["spend_30d"] = np.where(purchase & since(30), val, 0.0)
    cols["spend_90d"] = np.where(purchase & since(90), val, 0.0)
    for d in (7, 30, 90):
        cols[f"tickets_{d}d"] = (ticket & since(d)).astype(np.int64)
    cols["payment_failures_30d"] = (failure & since(30)).astype(np.int64)
    cols["payment_failures_90d"] = (failure & since(90)).astype(np.int64)
    cols["last_session_at"] = np.where(session, t, np.nan)
    cols["last_purchase_at"] = np.where(purchase, t, np.nan)
    frame = pd.DataFrame(cols)
    frame["customer_id"] = ev.customer_id.to_numpy()
    agg = frame.groupby("customer_id", sort=False).agg(
        {
            **{c: "sum" for c in cols if not c.startswith("last_")},
            "last_session_at": "max",
            "last_purchase_at": "max",
        }
    )
    active = customers[customers.signup_at < cutoff].set_index("customer_id")
    active = active.join(labels.set_index("customer_id").churned_at, how="left")
    active = active[active.churned_at.isna() | (active.churned_at >= cutoff)]
    out = active.join(agg, how="left")
    counts = [c for c in cols if not c.startswith("last_")]
    out[counts] = out[counts].fillna(0)
    out["tenure_days"] = (cutoff - out.signup_at) / DAY
    out["avg_session_minutes_30d"] = (out.minutes_30d / out.sessions_30d).where(out.sessions_30d > 0)
    out["hours_since_last_session"] = (cutoff - out.last_session_at) / HOUR
    out["days_since_last_purchase"] = (cutoff - out.last_purchase_at) / DAY
    out["session_rate_trend"] = out.sessions_7d / 7 - out.sessions_prev30 / 30
    out["label"] = (out.churned_at < cutoff + horizon_hours * HOUR).astype(np.int64)
    return out.sort_index()


NUMERIC = [
    "tenure_days", "monthly_charges", "sessions_3d", "sessions_7d", "sessions_30d", "sessions_90d",
    "minutes_7d", "minutes_30d", "minutes_90d", "avg_session_minutes_30d", "purchases_30d",
    "spend_30d", "spend_90d", "tickets_7d", "tickets_30d", "tickets_90d", "payment_failures_30d",
    "payment_failures_90d", "hours_since_last_session", "days_since_last_purchase", "session_rate_trend",
]  # fmt: skip
CATEGORICAL = ["plan", "region"]


EVENT_COLUMNS = ["customer_id", "event_time", "event_type", "value"]


def read_events(files: list[str], cutoff: int) -> pd.DataFrame:
    """The events of the 90-day window from the Parquet files: only the columns the build uses, row
    groups outside the window skipped by their statistics, as DuckDB's read_parquet does."""
    import pyarrow.parquet as pq

    window = [("event_time", ">=", cutoff - 90 * DAY), ("event_time", "<", cutoff)]
    return pq.read_table(files, columns=EVENT_COLUMNS, filters=window).to_pandas()


def compare(table: pd.DataFrame, path: str) -> dict[str, int]:
    """How many rows differ from Driftwood's table, per column (ours rounds to 1e-4)."""
    theirs = pd.read_csv(path, index_col="customer_id")
    if not table.index.equals(theirs.index):
        return {"customer_id": int(table.index.symmetric_difference(theirs.index).size) or len(table)}
    differences = {"label": int((table.label != theirs.label).sum())}
    for column in NUMERIC:
        a, b = table[column].to_numpy(dtype=float), theirs[column].to_numpy(dtype=float)
        same = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1.01e-4)
        differences[column] = int((~same).sum())
    for column in CATEGORICAL:
        differences[column] = int((table[column] != theirs[column]).sum())
    return differences


def transformer() -> ColumnTransformer:
    """Median imputation with indicators + standard scaling; most-frequent imputation + one-hot with a
    minimum frequency (the infrequent go to one bucket): what Driftwood's fitted transform does."""
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                NUMERIC,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01),
                ),
                CATEGORICAL,
            ),
        ],
        sparse_threshold=0,
    )


def timed(step: Callable[[], T]) -> tuple[T, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def main() -> None:
    folder, cutoff, horizon_hours, driftwood_table = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    events_files = sys.argv[5].split(",")
    customers = pd.read_csv(f"{folder}/customers.csv")
    labels = pd.read_csv(f"{folder}/labels.csv")
    table, build_t = timed(
        lambda: build(customers, read_events(events_files, cutoff), labels, cutoff, horizon_hours)
    )
    fitted = transformer()
    _, fit_t = timed(lambda: fitted.fit(table))
    matrix, transform_t = timed(lambda: fitted.transform(table))
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
                "differences": compare(table, driftwood_table),
            }
        )
    )


if __name__ == "__main__":
    main()
