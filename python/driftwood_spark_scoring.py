"""The Spark engine of batch scoring: ``mlflow.pyfunc.spark_udf`` over the rows ``driftwood score
--stage inputs`` wrote, into the scores partition that ``driftwood score --stage publish`` loads.

    spark-submit --master local[2] python/driftwood_spark_scoring.py \\
        --input file:///…/lake/scoring/<dataset>/dt=…/hr=…/input \\
        --output file:///…/lake/scores/<dataset>/dt=…/hr=…

The input folder holds ``rows.parquet`` (``entity_token`` and the raw inputs) and ``manifest.json``
(the version the run pinned, ``models:/<name>/<version>``, its threshold and the as-of time). The
version's ``python_function`` flavor (``python/driftwood_pyfunc``) scores each partition on the
executors, so a score here is the number ``/v1/predict`` answers for the same inputs. The output
replaces the folder (Spark's overwrite): a rerun of the same as-of time leaves its own files only.
Paths are anything the Spark session can read and write (``file://`` in local mode; ``s3a://`` or
``hdfs://`` on a cluster with the matching Hadoop connector). See docs/scoring.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

MANIFEST_FORMAT = "driftwood.scoring-input/v1"
REQUIRED = ("modelUri", "modelName", "modelVersion", "threshold", "asOf", "numeric", "categorical")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="driftwood_spark_scoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="the folder of rows.parquet and manifest.json")
    parser.add_argument("--output", required=True, help="the scores partition to replace")
    return parser.parse_args(argv)


def read_manifest(text: str, where: str) -> dict[str, Any]:
    """The run's manifest, refused with the field it lacks (the inputs stage writes every one)."""
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise SystemExit(f"{where}: not JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SystemExit(f"{where}: format: expected {MANIFEST_FORMAT!r}")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise SystemExit(f"{where}: missing {', '.join(missing)}; run 'driftwood score --stage inputs' again")
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    source = args.input.rstrip("/")
    spark = SparkSession.builder.appName("driftwood-scoring").getOrCreate()
    try:
        where = f"{source}/manifest.json"
        text = spark.read.text(where, wholetext=True).first()
        manifest = read_manifest(text[0] if text else "", where)
        fields = [*manifest["numeric"], *manifest["categorical"]]
        rows = spark.read.parquet(f"{source}/rows.parquet")
        # env_manager local: the executors' Python already has what the version pins (the mlflow venv).
        predict = mlflow.pyfunc.spark_udf(
            spark, manifest["modelUri"], result_type="double", env_manager="local"
        )
        scored = rows.withColumn("score", predict(F.struct(*(F.col(c) for c in fields))))
        scored.select(
            F.col("entity_token"),
            F.col("score"),
            # The API's label: the probability at the version's threshold.
            (F.col("score") >= F.lit(float(manifest["threshold"]))).cast("int").alias("label"),
            F.lit(str(manifest["modelName"])).alias("model_name"),
            F.lit(str(manifest["modelVersion"])).alias("model_version"),
            F.lit(int(manifest["asOf"])).cast("long").alias("as_of"),
        ).write.mode("overwrite").parquet(args.output)
    finally:
        spark.stop()
    print(json.dumps({"output": args.output, "model": manifest["modelUri"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
