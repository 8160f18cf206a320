"""Trains the scikit-learn twin of the benchmark's TF.js model and saves it as an MLflow model.

The pipeline mirrors Driftwood's transform: median imputation + standard scaling for numeric
columns, one-hot encoding (unknown categories ignored) for categorical ones, then a logistic
regression. Usage: sklearn_model.py <rows.json> <model dir>
"""

import json
import sys

import mlflow.sklearn
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def main(rows_path: str, out_dir: str) -> None:
    with open(rows_path, encoding="utf-8") as f:
        data = json.load(f)
    frame = pd.DataFrame(data["rows"])
    numeric: list[str] = data["numeric"]
    categorical: list[str] = data["categorical"]
    # Floats throughout: a null is a NaN, as in the requests the server will get.
    features = frame[numeric + categorical].astype({c: "float64" for c in numeric})
    model = Pipeline(
        [
            (
                "transform",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    )
    model.fit(features, data["labels"])
    # skops (MLflow's default format) audits types on save; the one-hot encoder stores a numpy dtype.
    mlflow.sklearn.save_model(
        model, out_dir, input_example=features.head(2), skops_trusted_types=["numpy.dtype"]
    )
    print(json.dumps({"saved": out_dir, "train_accuracy": float(model.score(features, data["labels"]))}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
