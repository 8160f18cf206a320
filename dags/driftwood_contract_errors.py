"""Contracts that make no DAG, as an Airflow import error (shown in the UI and by ``airflow dags
list-import-errors``) naming each file and its first problem.

The DAG factory (``driftwood_dags.py``) skips such a contract and keeps every other dataset's DAGs;
this file fails to import on purpose so that the skipped contract is not silent. It holds no DAG.
"""

from __future__ import annotations

from driftwood_contracts import load_dag_settings


class ContractError(ValueError):
    pass


_, _problems = load_dag_settings()
if _problems:
    raise ContractError(
        "contract(s) without DAGs (fix the file; the other datasets' DAGs are loaded): "
        + "; ".join(str(p) for p in _problems)
    )
