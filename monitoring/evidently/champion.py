"""The reference is the champion's own training data: the model version is looked up in the MLflow
registry (REST, standard library), its run names the training snapshot (tag
``driftwood.snapshot_id``, or the run's dataset input), and the snapshot's rows are read from the
lake at ``snapshots/<dataset>/<id>/data.parquet``. Snapshots are content addressed, so the id is
also the cache key: a warm sidecar makes two small REST calls and reads nothing else."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MonitorError

SNAPSHOT_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ChampionConfig:
    tracking_uri: str
    model_name: str
    alias: str = "champion"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class ChampionReference:
    model_name: str
    version: str
    run_id: str
    snapshot_id: str
    data_path: Path
    data_sha256: str | None

    @property
    def uri(self) -> str:
        return str(self.data_path)


def _get(config: ChampionConfig, path: str, params: dict[str, str]) -> dict[str, Any]:
    url = f"{config.tracking_uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=config.timeout_seconds) as res:
            return dict(json.loads(res.read()))
    except urllib.error.HTTPError as err:
        body = err.read()[:300].decode(errors="replace")
        code = "REFERENCE_UNRESOLVED" if err.code == 404 else "MLFLOW_ERROR"
        raise MonitorError(code, f"MLflow {path} {params}: HTTP {err.code} {body}") from err
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as err:
        raise MonitorError(
            "MLFLOW_UNAVAILABLE",
            f"MLflow at {config.tracking_uri} cannot be read ({err}); check setting champion.tracking_uri",
        ) from err


def snapshot_id_of_run(run: dict[str, Any]) -> str | None:
    """The training snapshot a run recorded: its tag, else the ``snapshot_id`` in a dataset
    input's source (both written by ``driftwood train --snapshot``)."""
    tags = {t.get("key"): t.get("value") for t in run.get("data", {}).get("tags", [])}
    sid = tags.get("driftwood.snapshot_id")
    if isinstance(sid, str) and SNAPSHOT_ID.match(sid):
        return sid
    for item in run.get("inputs", {}).get("dataset_inputs", []):
        try:
            source = json.loads(item.get("dataset", {}).get("source", "{}"))
        except ValueError:
            continue
        sid = source.get("snapshot_id") if isinstance(source, dict) else None
        if isinstance(sid, str) and SNAPSHOT_ID.match(sid):
            return sid
    return None


def resolve_champion(
    config: ChampionConfig, lake_dir: Path, dataset: str, version: str | None = None
) -> ChampionReference:
    """The training snapshot of ``version`` (the version that served the window), or of the
    version the alias points at. Errors name what is missing and how to fix it."""
    if version is not None:
        mv = _get(config, "model-versions/get", {"name": config.model_name, "version": version})
    else:
        mv = _get(config, "registered-models/alias", {"name": config.model_name, "alias": config.alias})
    model_version = mv["model_version"]
    number, run_id = str(model_version["version"]), str(model_version.get("run_id") or "")
    if not run_id:
        raise MonitorError(
            "REFERENCE_UNRESOLVED", f"model {config.model_name} version {number} has no run to find its data"
        )
    run = _get(config, "runs/get", {"run_id": run_id})["run"]
    sid = snapshot_id_of_run(run)
    if sid is None:
        raise MonitorError(
            "REFERENCE_UNRESOLVED",
            f"model {config.model_name} version {number} (run {run_id}) records no training snapshot "
            "(tag driftwood.snapshot_id): train it with `driftwood train --snapshot <id|latest>`",
        )
    folder = lake_dir / "snapshots" / dataset / sid
    data = folder / "data.parquet"
    if not data.is_file():
        raise MonitorError(
            "REFERENCE_UNRESOLVED",
            f"snapshot {sid} of model {config.model_name} version {number} is not in the lake at {data}",
        )
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        digest = manifest.get("dataSha256") if isinstance(manifest, dict) else None
    except (OSError, ValueError):
        digest = None
    return ChampionReference(config.model_name, number, run_id, sid, data, digest)


def verify_snapshot(ref: ChampionReference) -> None:
    """The data file must be the one the manifest names (read once, on a cache miss)."""
    if ref.data_sha256 is None:
        return
    digest = hashlib.sha256()
    with ref.data_path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != ref.data_sha256:
        raise MonitorError(
            "REFERENCE_INVALID",
            f"snapshot {ref.snapshot_id}: {ref.data_path} does not match its manifest's sha256",
        )
