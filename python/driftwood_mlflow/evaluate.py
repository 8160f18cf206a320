"""`mlflow.models.evaluate` on a registered Driftwood classifier, with its holdout as an MLflow dataset.

The version's training run kept its holdout (`evaluation/holdout.json`: raw fields and label per
row). This step scores those rows with the version's `python_function` flavor (the probabilities
`/v1/predict` answers), labels them at the version's threshold (tag `driftwood.threshold`), and runs
MLflow's default classifier evaluator on them: accuracy, precision, recall, F1, the confusion matrix
and, from the probabilities, ROC AUC and log loss under MLflow's usual metric names.

The results go to a new evaluation run, a child of the training run (`mlflow.parentRunId`) in the
same experiment, with the holdout as its `evaluation` dataset input and the version's logged model
linked (`model_id`). Not the training run itself: that run is finished and its `holdout_*` metrics
are Driftwood's own record; a child run per evaluation keeps it unchanged, and MLflow's run
comparison sets evaluation runs of different versions side by side.

`mlflow.models.evaluate` is given the predictions, not the model: MLflow's classifier evaluator
reads class labels from `predict` and probabilities only from scikit-learn, XGBoost and CatBoost
models' `predict_proba`, so a pyfunc that answers probabilities gets no ROC AUC from it. The
predictions come from `mlflow.pyfunc.load_model` on the version, the flavor that serving parity tests.

    PYTHONPATH=python .venvs/mlflow/bin/python -m driftwood_mlflow.evaluate --model churn --alias champion
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HOLDOUT_ARTIFACT = "evaluation/holdout.json"
HOLDOUT_FORMAT = "driftwood.holdout/v1"
THRESHOLD_TAG = "driftwood.threshold"
LABEL = "label"
PREDICTION = "prediction"
PROBABILITY = "probability"


class EvaluateError(Exception):
    """A version this step cannot evaluate; the message says what to change."""


@dataclass(frozen=True)
class EvaluateResult:
    model_name: str
    model_version: str
    model_id: str | None
    training_run_id: str
    evaluation_run_id: str
    rows: int
    threshold: float
    metrics: dict[str, float]


def holdout_frame(holdout: Any) -> pd.DataFrame:
    """The holdout's raw fields and label as a DataFrame; whole-number columns as float64, the
    signature's `double` (MLflow refuses int64 for it)."""
    if not isinstance(holdout, dict) or holdout.get("format") != HOLDOUT_FORMAT:
        raise EvaluateError(f"{HOLDOUT_ARTIFACT}: expected format {HOLDOUT_FORMAT}")
    rows = holdout.get("rows")
    if not isinstance(rows, list) or not rows:
        raise EvaluateError(f"{HOLDOUT_ARTIFACT}: no rows")
    frame = pd.DataFrame([r["features"] for r in rows])
    ints = [
        c
        for c in frame.columns
        if pd.api.types.is_integer_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    frame = frame.astype({c: "float64" for c in ints})
    frame[LABEL] = np.asarray([int(r["label"]) for r in rows], dtype=np.int64)
    return frame


def _probability_metrics() -> list[Any]:
    from mlflow.metrics import MetricValue, make_metric
    from sklearn.metrics import log_loss, roc_auc_score

    # Extra metrics receive the dataset's columns by parameter name: `probability` is ours.
    def roc_auc(predictions: pd.Series, targets: pd.Series, probability: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"roc_auc": float(roc_auc_score(targets, probability))})

    def logloss(predictions: pd.Series, targets: pd.Series, probability: pd.Series) -> MetricValue:
        p = np.clip(probability.to_numpy(dtype=np.float64), 1e-15, 1 - 1e-15)
        return MetricValue(aggregate_results={"log_loss": float(log_loss(targets, p, labels=[0, 1]))})

    return [
        make_metric(eval_fn=roc_auc, greater_is_better=True, name="roc_auc"),
        make_metric(eval_fn=logloss, greater_is_better=False, name="log_loss"),
    ]


def _holdout_source(run_artifact_uri: str) -> Any:
    """Where the holdout lives, as a dataset source MLflow resolves: artifacts behind the tracking
    server's proxy (`mlflow-artifacts:`, which MLflow has no dataset source for) by their HTTP URL."""
    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    uri = f"{run_artifact_uri.rstrip('/')}/{HOLDOUT_ARTIFACT}"
    if uri.startswith("mlflow-artifacts:"):
        path = uri.removeprefix("mlflow-artifacts:").lstrip("/")
        return HTTPDatasetSource(
            f"{mlflow.get_tracking_uri().rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/{path}"
        )
    return uri


def _model_id(mv: Any) -> str | None:
    """The version's logged model: `model_id`, or its `models:/<id>` source (the REST reply of a
    version created with a source and model id may leave `model_id` out)."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    source = str(mv.source or "")
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def run_evaluate(model_name: str, alias: str | None, version: str | None) -> EvaluateResult:
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    client = MlflowClient()
    mv = (
        client.get_model_version(model_name, version)
        if version
        else client.get_model_version_by_alias(model_name, alias or "champion")
    )
    if not mv.run_id:
        raise EvaluateError(
            f"{model_name} version {mv.version} has no training run: nothing holds its holdout"
        )
    threshold_tag = mv.tags.get(THRESHOLD_TAG)
    if threshold_tag is None:
        raise EvaluateError(
            f"{model_name} version {mv.version} has no tag {THRESHOLD_TAG}: "
            "not a Driftwood classifier version"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=HOLDOUT_ARTIFACT, dst_path=tmp
        )
        frame = holdout_frame(json.loads(Path(path).read_text(encoding="utf-8")))
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    threshold = float(threshold_tag)
    # The fields the version takes: the holdout also holds columns its feature selection left out.
    features = frame[model.metadata.get_input_schema().input_names()]
    probability = np.asarray(model.predict(features), dtype=np.float64)
    data = frame.assign(**{PROBABILITY: probability, PREDICTION: (probability >= threshold).astype(np.int64)})
    training = client.get_run(mv.run_id)
    model_id = _model_id(mv)
    dataset = mlflow.data.from_pandas(
        data,
        source=_holdout_source(training.info.artifact_uri),
        targets=LABEL,
        predictions=PREDICTION,
        name=f"{model_name}-v{mv.version}-holdout",
    )
    mlflow.set_experiment(experiment_id=training.info.experiment_id)
    tags = {
        "mlflow.parentRunId": mv.run_id,
        "driftwood.model_name": model_name,
        "driftwood.model_version": str(mv.version),
        "driftwood.evaluates_run": mv.run_id,
        "mlflow.note.content": f"mlflow.models.evaluate of {model_name} version {mv.version} "
        "on its training run's holdout.",
    }
    with (
        mlflow.start_run(run_name=f"evaluate {model_name} v{mv.version}", tags=tags) as run,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        mlflow.log_params({"threshold": threshold, "model_uri": f"models:/{model_name}/{mv.version}"})
        result = mlflow.models.evaluate(
            data=dataset,
            model_type="classifier",
            extra_metrics=_probability_metrics(),
            # No SHAP: it explains a model, and given pandas 3's string columns MLflow's SHAP
            # evaluator fails (np.issubdtype on a StringDtype) before it can skip.
            evaluator_config={"label_list": [0, 1], "pos_label": 1, "log_model_explainability": False},
            model_id=model_id,
        )
    return EvaluateResult(
        model_name=model_name,
        model_version=str(mv.version),
        model_id=model_id,
        training_run_id=mv.run_id,
        evaluation_run_id=run.info.run_id,
        rows=len(data),
        threshold=threshold,
        metrics={k: float(v) for k, v in result.metrics.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m driftwood_mlflow.evaluate",
        description="mlflow.models.evaluate on a registered Driftwood classifier version, on its holdout "
        "(MLFLOW_TRACKING_URI names the server).",
    )
    parser.add_argument("--model", required=True, help="registered model name, e.g. churn")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", default=None, help="the version behind this alias (default: champion)")
    which.add_argument("--version", default=None, help="this version number")
    parser.add_argument("--output", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = run_evaluate(args.model, args.alias, args.version)
    except EvaluateError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    text = json.dumps(asdict(result), indent=2)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
