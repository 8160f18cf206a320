"""`mlflow.models.evaluate` on a registered Driftwood version, with its holdout as an MLflow dataset.

The version's training run kept its holdout; this step scores it with the version's
`python_function` flavor (`mlflow.pyfunc.load_model`, the flavor serving parity tests) and runs
MLflow's default evaluator on the result. Which evaluation a version gets is read once, from the
version's `driftwood.task` tag (`EVALUATIONS`):

* a classifier (no tag; `driftwood.threshold` set): the rows of `evaluation/holdout.json` (raw fields
  and label), their probabilities, labelled at the version's threshold; MLflow's classifier metrics
  (accuracy, precision, recall, F1, the confusion matrix) and, from the probabilities, ROC AUC and log
  loss under MLflow's usual names;
* a forecast (`sequence_forecast`, the hourly LSTM): the test windows of `evaluation/test-candles.json`
  (the candles training scored its test period on), rebuilt by the pyfunc (one forecast per window)
  and joined to the close each one forecasts; MLflow's regressor metrics on the price (RMSE, MAE,
  MAPE, R², max error) plus the directional accuracy and the RMSE against the persistence forecast's,
  which training logs as `test_*`.

The results go to an evaluation run, a child of the training run (`mlflow.parentRunId`) in the same
experiment, with the holdout as its `evaluation` dataset input and the version's logged model linked
(`model_id`). Not the training run itself: that run is finished and its metrics are Driftwood's own
record; a child run per evaluation keeps it unchanged, and MLflow's run comparison sets evaluation
runs of different versions side by side.

One evaluation run per version: a version that already has a finished one (found by its tags) is not
evaluated again, the earlier run's metrics are answered (`reused`); a try that failed or was killed
part way is deleted before the new one starts, so a retried or re-run task never leaves two runs or
repeated metric points. `--replace` evaluates anew and deletes the earlier run.

`mlflow.models.evaluate` is given the predictions, not the model: MLflow's classifier evaluator
reads class labels from `predict` and probabilities only from scikit-learn, XGBoost and CatBoost
models' `predict_proba`, so a pyfunc that answers probabilities gets no ROC AUC from it; and a
forecast pyfunc answers one row per window, not per input row.

    PYTHONPATH=python .venvs/mlflow/bin/python -m driftwood_mlflow.evaluate --model churn --alias champion

Exit codes, as the driftwood CLI's (the DAG's `mlflow_evaluate` task maps them the same way): 0 done
(or already done); 2 a version this step cannot evaluate, or no such version (not retried); 1 MLflow
failed (retried). A failure ends with one line `driftwood mlflow_evaluate: <CODE>: <message>`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STEP = "mlflow_evaluate"
HOLDOUT_ARTIFACT = "evaluation/holdout.json"
HOLDOUT_FORMAT = "driftwood.holdout/v1"
TEST_CANDLES_ARTIFACT = "evaluation/test-candles.json"
THRESHOLD_TAG = "driftwood.threshold"
TASK_TAG = "driftwood.task"
CLASSIFIER = "binary_classification"
FORECAST = "sequence_forecast"
# The tags an evaluation run is found by (one per version).
EVALUATOR_TAG = "driftwood.evaluator"
EVALUATOR = "mlflow.models.evaluate"
LABEL = "label"
PREDICTION = "prediction"
PROBABILITY = "probability"
HOUR_MS = 3_600_000
# The candle fields of test-candles.json (tasks/src/forecast/candles.ts) as the pyfunc's columns.
CANDLE_FIELDS = {
    "openTime": "open_time",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
}


class EvaluateError(Exception):
    """A version this step cannot evaluate; the message says what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class EvaluateResult:
    model_name: str
    model_version: str
    model_id: str | None
    task: str
    training_run_id: str
    evaluation_run_id: str
    rows: int
    # A classifier's decision threshold; None for a forecast.
    threshold: float | None
    metrics: dict[str, float]
    # True when the version's earlier evaluation run was answered instead of evaluating again.
    reused: bool = False


@dataclass(frozen=True)
class Prepared:
    """What one kind of version hands to `mlflow.models.evaluate`: the scored holdout and how to read it."""

    data: pd.DataFrame
    artifact: str
    model_type: str
    targets: str
    predictions: str
    extra_metrics: list[Any]
    params: dict[str, Any]
    evaluator_config: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None


# --- classifiers ---------------------------------------------------------------------------------


def holdout_frame(holdout: Any) -> pd.DataFrame:
    """The holdout's raw fields and label as a DataFrame; whole-number columns as float64, the
    signature's `double` (MLflow refuses int64 for it)."""
    if not isinstance(holdout, dict) or holdout.get("format") != HOLDOUT_FORMAT:
        raise EvaluateError("MODEL_INVALID", f"{HOLDOUT_ARTIFACT}: expected format {HOLDOUT_FORMAT}")
    rows = holdout.get("rows")
    if not isinstance(rows, list) or not rows:
        raise EvaluateError("MODEL_INVALID", f"{HOLDOUT_ARTIFACT}: no rows")
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
        # A holdout of one class has no ROC AUC (as training logs none): NaN, not a failed step.
        if targets.nunique() < 2:
            return MetricValue(aggregate_results={"roc_auc": float("nan")})
        return MetricValue(aggregate_results={"roc_auc": float(roc_auc_score(targets, probability))})

    def logloss(predictions: pd.Series, targets: pd.Series, probability: pd.Series) -> MetricValue:
        p = np.clip(probability.to_numpy(dtype=np.float64), 1e-15, 1 - 1e-15)
        return MetricValue(aggregate_results={"log_loss": float(log_loss(targets, p, labels=[0, 1]))})

    return [
        make_metric(eval_fn=roc_auc, greater_is_better=True, name="roc_auc"),
        make_metric(eval_fn=logloss, greater_is_better=False, name="log_loss"),
    ]


def prepare_classifier(mv: Any, training: Any, model: Any, artifact: Path) -> Prepared:
    threshold_tag = mv.tags.get(THRESHOLD_TAG)
    if threshold_tag is None:
        raise EvaluateError(
            "MODEL_INVALID",
            f"{mv.name} version {mv.version} has no tag {THRESHOLD_TAG}: not a Driftwood classifier version",
        )
    frame = holdout_frame(json.loads(artifact.read_text(encoding="utf-8")))
    threshold = float(threshold_tag)
    # The fields the version takes: the holdout also holds columns its feature selection left out.
    features = frame[model.metadata.get_input_schema().input_names()]
    probability = np.asarray(model.predict(features), dtype=np.float64)
    data = frame.assign(**{PROBABILITY: probability, PREDICTION: (probability >= threshold).astype(np.int64)})
    return Prepared(
        data=data,
        artifact=HOLDOUT_ARTIFACT,
        model_type="classifier",
        targets=LABEL,
        predictions=PREDICTION,
        extra_metrics=_probability_metrics(),
        params={"threshold": threshold},
        # No SHAP: it explains a model, and given pandas 3's string columns MLflow's SHAP
        # evaluator fails (np.issubdtype on a StringDtype) before it can skip.
        evaluator_config={"label_list": [0, 1], "pos_label": 1, "log_model_explainability": False},
        threshold=threshold,
    )


# --- forecasts -----------------------------------------------------------------------------------

ACTUAL = "actual_close"
PRICE = "price"


def candle_runs(candles: Any) -> list[pd.DataFrame]:
    """The test candles (tasks/src/forecast `testCandles`: oldest first) as the pyfunc's frames, one
    per unbroken run of hours: a window never spans a missing hour (`buildWindows` drops those)."""
    if not isinstance(candles, list) or not candles:
        raise EvaluateError("MODEL_INVALID", f"{TEST_CANDLES_ARTIFACT}: expected a list of candles")
    try:
        frame = pd.DataFrame(candles)[list(CANDLE_FIELDS)].rename(columns=CANDLE_FIELDS)
    except KeyError as err:
        raise EvaluateError(
            "MODEL_INVALID", f"{TEST_CANDLES_ARTIFACT}: candles need {list(CANDLE_FIELDS)} ({err})"
        ) from None
    frame["open_time"] = frame["open_time"].astype(np.int64)
    breaks = [0, *(np.flatnonzero(np.diff(frame["open_time"].to_numpy()) != HOUR_MS) + 1), len(frame)]
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in pairwise(breaks)]


def forecast_windows(model: Any, runs: list[pd.DataFrame], window_hours: int) -> pd.DataFrame:
    """Every test window's forecast beside the close it forecasts: the pyfunc forecasts each candle
    with `window_hours` candles before it; a forecast whose hour is past the run's end has no
    actual close and was no test window."""
    parts = []
    for run in runs:
        if len(run) <= window_hours:
            continue
        forecasts = model.predict(run)
        closes = pd.Series(run["close"].to_numpy(dtype=np.float64), index=run["open_time"].to_numpy())
        target = pd.to_datetime(forecasts["forecast_open_time"], utc=True) - pd.Timestamp(0, tz="UTC")
        target_ms = target // pd.Timedelta(milliseconds=1)
        actual = closes.reindex(target_ms.to_numpy()).to_numpy()
        parts.append(forecasts.assign(**{ACTUAL: actual})[np.isfinite(actual)])
    if not parts:
        raise EvaluateError(
            "DATA_MISSING", f"{TEST_CANDLES_ARTIFACT}: no run of {window_hours + 2} consecutive hours"
        )
    data = pd.concat(parts, ignore_index=True)
    data["actual_log_return"] = np.log(data[ACTUAL] / data["last_close"])
    return data


def _forecast_metrics() -> list[Any]:
    from mlflow.metrics import MetricValue, make_metric

    # As tasks/src/forecast/metrics.ts `forecastMetrics`: the forecast move has the actual move's sign.
    def directional_accuracy(
        predictions: pd.Series, targets: pd.Series, last_close: pd.Series
    ) -> MetricValue:
        last = last_close.to_numpy(dtype=np.float64)
        hits = np.sign(predictions.to_numpy(dtype=np.float64) - last) == np.sign(
            targets.to_numpy(dtype=np.float64) - last
        )
        return MetricValue(aggregate_results={"directional_accuracy": float(hits.mean())})

    # The persistence forecast (the next close is the last one) is the bar the promotion gate sets.
    def rmse_vs_persistence(predictions: pd.Series, targets: pd.Series, last_close: pd.Series) -> MetricValue:
        y = targets.to_numpy(dtype=np.float64)
        model = np.sqrt(np.mean((y - predictions.to_numpy(dtype=np.float64)) ** 2))
        persistence = np.sqrt(np.mean((y - last_close.to_numpy(dtype=np.float64)) ** 2))
        return MetricValue(aggregate_results={"rmse_vs_persistence": float(model / persistence)})

    return [
        make_metric(eval_fn=directional_accuracy, greater_is_better=True, name="directional_accuracy"),
        make_metric(eval_fn=rmse_vs_persistence, greater_is_better=False, name="rmse_vs_persistence"),
    ]


def prepare_forecast(mv: Any, training: Any, model: Any, artifact: Path) -> Prepared:
    params = training.data.params
    try:
        window_hours = int(params["window_hours"])
        expected = int(params["windows_test"])
    except (KeyError, ValueError):
        raise EvaluateError(
            "MODEL_INVALID",
            f"training run {training.info.run_id} has no window_hours/windows_test params: "
            "not a Driftwood forecast run",
        ) from None
    runs = candle_runs(json.loads(artifact.read_text(encoding="utf-8")))
    data = forecast_windows(model, runs, window_hours)
    # The same windows training scored, or the comparison with its test_* metrics means nothing.
    if len(data) != expected:
        raise EvaluateError(
            "MODEL_INVALID",
            f"{TEST_CANDLES_ARTIFACT} gives {len(data)} test windows, training scored {expected}",
        )
    return Prepared(
        data=data,
        artifact=TEST_CANDLES_ARTIFACT,
        model_type="regressor",
        targets=ACTUAL,
        predictions=PRICE,
        extra_metrics=_forecast_metrics(),
        params={"window_hours": window_hours, "horizon_hours": int(data["horizon_hours"].iloc[0])},
        evaluator_config={"log_model_explainability": False},
    )


# Per task kind (the version's `driftwood.task` tag; tabular versions carry none): what it evaluates on.
EVALUATIONS: dict[str, tuple[str, Callable[[Any, Any, Any, Path], Prepared]]] = {
    CLASSIFIER: (HOLDOUT_ARTIFACT, prepare_classifier),
    FORECAST: (TEST_CANDLES_ARTIFACT, prepare_forecast),
}


# --- the evaluation run ----------------------------------------------------------------------------


def _holdout_source(run_artifact_uri: str, artifact: str) -> Any:
    """Where the holdout lives, as a dataset source MLflow resolves: artifacts behind the tracking
    server's proxy (`mlflow-artifacts:`, which MLflow has no dataset source for) by their HTTP URL."""
    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    uri = f"{run_artifact_uri.rstrip('/')}/{artifact}"
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


def _evaluation_tags(mv: Any) -> dict[str, str]:
    return {
        "mlflow.parentRunId": mv.run_id,
        "driftwood.model_name": mv.name,
        "driftwood.model_version": str(mv.version),
        "driftwood.evaluates_run": mv.run_id,
        EVALUATOR_TAG: EVALUATOR,
    }


def evaluation_runs(client: Any, experiment_id: str, mv: Any) -> list[Any]:
    """The version's evaluation runs so far (not deleted), newest first."""
    tags = {k: v for k, v in _evaluation_tags(mv).items() if k != "mlflow.parentRunId"}
    clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    return list(
        client.search_runs(
            [experiment_id], filter_string=" and ".join(clauses), order_by=["attributes.start_time DESC"]
        )
    )


def _result(mv: Any, task: str, run: Any, rows: int, threshold: float | None, reused: bool) -> EvaluateResult:
    return EvaluateResult(
        model_name=mv.name,
        model_version=str(mv.version),
        model_id=_model_id(mv),
        task=task,
        training_run_id=mv.run_id,
        evaluation_run_id=run.info.run_id,
        rows=rows,
        threshold=threshold,
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        reused=reused,
    )


def run_evaluate(
    model_name: str, alias: str | None, version: str | None, replace: bool = False
) -> EvaluateResult:
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
            "MODEL_INVALID",
            f"{model_name} version {mv.version} has no training run: nothing holds its holdout",
        )
    task = mv.tags.get(TASK_TAG, CLASSIFIER)
    if task not in EVALUATIONS:
        raise EvaluateError(
            "MODEL_INVALID",
            f"{model_name} version {mv.version}: no MLflow evaluation for task {task} "
            f"(known: {', '.join(EVALUATIONS)})",
        )
    artifact, prepare = EVALUATIONS[task]
    training = client.get_run(mv.run_id)
    experiment_id = training.info.experiment_id
    earlier = evaluation_runs(client, experiment_id, mv)
    done = next((r for r in earlier if r.info.status == "FINISHED"), None)
    if done is not None and not replace:
        rows = int(done.data.metrics.get("example_count", 0))
        threshold = done.data.params.get("threshold")
        return _result(mv, task, done, rows, None if threshold is None else float(threshold), reused=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=artifact, dst_path=tmp)
        model = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
        prepared = prepare(mv, training, model, Path(path))
    # A try that failed or was killed part way (or the run --replace replaces): one run per version.
    for run in earlier:
        client.delete_run(run.info.run_id)
    model_id = _model_id(mv)
    dataset = mlflow.data.from_pandas(
        prepared.data,
        source=_holdout_source(training.info.artifact_uri, prepared.artifact),
        targets=prepared.targets,
        predictions=prepared.predictions,
        name=f"{model_name}-v{mv.version}-holdout",
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    tags = {
        **_evaluation_tags(mv),
        "mlflow.note.content": f"mlflow.models.evaluate of {model_name} version {mv.version} "
        f"on its training run's holdout ({prepared.artifact}).",
    }
    with (
        mlflow.start_run(run_name=f"evaluate {model_name} v{mv.version}", tags=tags) as run,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        mlflow.log_params({**prepared.params, "model_uri": f"models:/{model_name}/{mv.version}"})
        result = mlflow.models.evaluate(
            data=dataset,
            model_type=prepared.model_type,
            extra_metrics=prepared.extra_metrics,
            evaluator_config=prepared.evaluator_config,
            model_id=model_id,
        )
    return EvaluateResult(
        model_name=model_name,
        model_version=str(mv.version),
        model_id=model_id,
        task=task,
        training_run_id=mv.run_id,
        evaluation_run_id=run.info.run_id,
        rows=len(prepared.data),
        threshold=prepared.threshold,
        metrics={k: float(v) for k, v in result.metrics.items()},
    )


def _failure(err: Exception) -> tuple[str, str, int]:
    """The failure line's code and message, and the exit code: 2 when a retry cannot help."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, EvaluateError):
        return err.code, str(err), 2
    # The version's own loader refusing its folder or the holdout (driftwood_pyfunc's
    # DriftwoodModelError, imported from the version's code/): the same on every try.
    if type(err).__name__ == "DriftwoodModelError":
        code = str(getattr(err, "code", "MODEL_INVALID"))
        return code, str(err).removeprefix(f"{code}: "), 2
    if isinstance(err, MlflowException):
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return "NOT_FOUND", err.message, 2
        return "MLFLOW_UNAVAILABLE", f"{err.message} (check MLFLOW_TRACKING_URI and the server)", 1
    raise err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m driftwood_mlflow.evaluate",
        description="mlflow.models.evaluate on a registered Driftwood version, on its holdout, into a child "
        "run of its training run (MLFLOW_TRACKING_URI names the server). A version already evaluated "
        "is not evaluated again.",
    )
    parser.add_argument("--model", required=True, help="registered model name, e.g. churn")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", default=None, help="the version behind this alias (default: champion)")
    which.add_argument("--version", default=None, help="this version number")
    parser.add_argument(
        "--replace", action="store_true", help="evaluate again, deleting the version's earlier evaluation run"
    )
    parser.add_argument("--output", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = run_evaluate(args.model, args.alias, args.version, replace=args.replace)
    except Exception as err:  # _failure re-raises what it does not know
        code, message, exit_code = _failure(err)
        print(f"driftwood {STEP}: {code}: {message}", file=sys.stderr)
        return exit_code
    text = json.dumps(asdict(result), indent=2)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
