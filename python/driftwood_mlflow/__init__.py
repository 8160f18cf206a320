"""Driftwood's steps that run on MLflow's own Python tools (not shipped inside model versions).

- `evaluate`: `mlflow.models.evaluate` on a registered version (the champion by default), with the
  holdout its training run kept as an MLflow dataset (a classifier's, or a forecast's test windows),
  once per version; `python -m driftwood_mlflow.evaluate --help`. The DAGs' `mlflow_evaluate` task.
"""
