"""Airflow reads its configuration at import: keep the example DAGs out and the metadata under the
project's test folder before any test module imports it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".driftwood" / "test" / "airflow-pytest"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
