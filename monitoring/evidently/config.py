"""The sidecar's configuration: one YAML file declares the dataset, its columns, the window, the
reference and the decision policy. Paths may use ``${VAR}``; a bad setting stops the sidecar with a
message that names it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .champion import ChampionConfig
from .contract import label_source, load_contract, retrain_dag_id
from .decision import DecisionPolicy
from .errors import MonitorError


@dataclass(frozen=True)
class WebhookConfig:
    """Where a retrain request goes. ``kind: signed`` POSTs an HMAC-signed JSON body to ``url``;
    ``kind: airflow`` creates a ``dag_id`` run through Airflow's REST API (JWT from /auth/token)."""

    kind: str = "none"
    url: str = ""
    secret_file: str | None = None
    # Default: the dataset's retrain DAG as its contract names it (``<dataset>_retrain``).
    dag_id: str = ""
    # With an asset URI, an asset event is posted instead of a DAG run (a retrain DAG is scheduled
    # on the asset driftwood://<dataset>/drift).
    asset_uri: str = ""
    username: str = ""
    password_file: str | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AlertsConfig:
    """``POST /alerts`` (Alertmanager's webhook): the bearer token Alertmanager sends, read from a
    file when a request arrives. Unset, the route refuses every request (503)."""

    token_file: str | None = None


@dataclass(frozen=True)
class LabelsConfig:
    warehouse_url: str
    pii_key_file: str | None = None
    # A file holding the URL (a container secret: the URL carries the warehouse password), read
    # when labels are read, so that the file may appear after the sidecar starts.
    warehouse_url_file: str | None = None
    horizon_hours: int = 48
    label_delay_hours: int = 24
    min_rows: int = 100
    # Where the labels are, from the dataset's contract (contract.py: label_source).
    table: str = ""
    id_column: str = ""
    event_column: str = ""
    reported_column: str = ""

    def resolved_url(self) -> str:
        if not self.warehouse_url_file:
            return self.warehouse_url
        try:
            return Path(self.warehouse_url_file).read_text().strip()
        except OSError as err:
            raise MonitorError(
                "CONFIG_INVALID", f"setting labels.warehouse_url_file: cannot read {self.warehouse_url_file}"
            ) from err

    def pii_key(self) -> str:
        """The tokeniser key: ``pii_key_file``, else ``DRIFTWOOD_PII_KEY_FILE`` or ``DRIFTWOOD_PII_KEY``
        (the serving API's own settings)."""
        path = self.pii_key_file or os.environ.get("DRIFTWOOD_PII_KEY_FILE")
        if path:
            try:
                key = Path(path).read_text().strip()
            except OSError as err:
                raise MonitorError(
                    "CONFIG_INVALID", f"setting labels.pii_key_file: cannot read {path}"
                ) from err
        else:
            key = os.environ.get("DRIFTWOOD_PII_KEY", "").strip()
        if len(key) < 16:
            raise MonitorError(
                "CONFIG_INVALID",
                "setting labels.pii_key_file (or DRIFTWOOD_PII_KEY): the API's 16+ character PII key "
                "is needed to join labels to logged predictions",
            )
        return key


@dataclass(frozen=True)
class MonitorConfig:
    dataset: str
    predictions_dir: Path
    lake_dir: Path
    reference: str
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    prediction_column: str = "probability"
    window_minutes: int = 60
    schedule_seconds: int = 0
    # Rows per side Evidently's HTML report is drawn from (0: every row); the drift decision always
    # uses every row (exact_drift.py).
    max_rows: int = 50_000
    drift_share: float = 0.5
    served_only: bool = True
    # preset: DataDriftPreset's full report; drift_only: the same drift tests, fewer widgets, faster.
    report_mode: str = "preset"
    policy: DecisionPolicy = field(default_factory=DecisionPolicy)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    # The reference from the registry: the training snapshot of the model that served the window.
    champion: ChampionConfig | None = None
    # Delayed labels from the warehouse: classification quality of windows whose labels are in.
    labels: LabelsConfig | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical + self.categorical

    @property
    def reports_dir(self) -> Path:
        return self.lake_dir / "monitoring" / "reports" / self.dataset

    @property
    def decisions_file(self) -> Path:
        return self.lake_dir / "monitoring" / "decisions" / f"{self.dataset}.jsonl"


def _expand(value: str) -> str:
    return os.path.expandvars(os.path.expanduser(value))


def _require(raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise MonitorError("CONFIG_INVALID", f"setting {where}{key}: required, missing")
    value = raw[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MonitorError("CONFIG_INVALID", f"setting {where}{key}: expected {kind.__name__}, got {value!r}")
    return value


def _optional(raw: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    return _require(raw, key, kind, where) if key in raw else default


def _string_list(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MonitorError(
            "CONFIG_INVALID", f"setting {where}{key}: expected a list of column names, got {value!r}"
        )
    return tuple(value)


def parse_config(raw: Any, base_dir: Path) -> MonitorConfig:
    """Validates a parsed YAML document; relative paths are resolved against ``base_dir``."""
    if not isinstance(raw, dict):
        raise MonitorError("CONFIG_INVALID", "the monitoring config must be a YAML mapping")

    def path_of(value: str) -> Path:
        p = Path(_expand(value))
        return p if p.is_absolute() else (base_dir / p)

    contract: dict[str, Any] = {}

    def contract_of() -> dict[str, Any]:
        """The dataset's contract, read when a setting defaults from it."""
        if not contract:
            contract.update(load_contract(_require(raw, "dataset", str, "")))
        return contract

    columns = _require(raw, "columns", dict, "")
    numerical = _string_list(columns, "numerical", "columns.")
    categorical = _string_list(columns, "categorical", "columns.")
    if not numerical and not categorical:
        raise MonitorError("CONFIG_INVALID", "setting columns: declare at least one column")
    overlap = set(numerical) & set(categorical)
    if overlap:
        raise MonitorError(
            "CONFIG_INVALID", f"setting columns: {sorted(overlap)} both numerical and categorical"
        )

    decision = _optional(raw, "decision", dict, {}, "")
    policy = DecisionPolicy(
        k=_optional(decision, "k", int, 2, "decision."),
        n=_optional(decision, "n", int, 3, "decision."),
        min_rows=_optional(decision, "min_rows", int, 500, "decision."),
        cooldown_minutes=_optional(decision, "cooldown_minutes", int, 360, "decision."),
    )
    policy.validate()

    hook = _optional(raw, "webhook", dict, {}, "")
    kind = _optional(hook, "kind", str, "none", "webhook.")
    if kind not in ("none", "signed", "airflow"):
        raise MonitorError(
            "CONFIG_INVALID", f"setting webhook.kind: expected none, signed or airflow, got {kind!r}"
        )
    if kind != "none" and not hook.get("url"):
        raise MonitorError("CONFIG_INVALID", f"setting webhook.url: required when webhook.kind is {kind}")
    if kind == "airflow" and not (hook.get("username") and hook.get("password_file")):
        raise MonitorError(
            "CONFIG_INVALID", "settings webhook.username and webhook.password_file: required for airflow"
        )
    if kind == "signed" and not hook.get("secret_file"):
        raise MonitorError("CONFIG_INVALID", "setting webhook.secret_file: required for a signed webhook")
    webhook = WebhookConfig(
        kind=kind,
        url=_optional(hook, "url", str, "", "webhook."),
        secret_file=str(path_of(hook["secret_file"])) if hook.get("secret_file") else None,
        dag_id=_optional(hook, "dag_id", str, "", "webhook.")
        or (retrain_dag_id(contract_of()) if kind == "airflow" else ""),
        asset_uri=_optional(hook, "asset_uri", str, "", "webhook."),
        username=_optional(hook, "username", str, "", "webhook."),
        password_file=str(path_of(hook["password_file"])) if hook.get("password_file") else None,
        timeout_seconds=_optional(hook, "timeout_seconds", float, 10.0, "webhook."),
    )

    champion = None
    if "champion" in raw:
        ch = _require(raw, "champion", dict, "")
        champion = ChampionConfig(
            tracking_uri=_expand(_require(ch, "tracking_uri", str, "champion.")),
            model_name=_expand(_require(ch, "model_name", str, "champion.")),
            alias=_optional(ch, "alias", str, "champion", "champion."),
            timeout_seconds=_optional(ch, "timeout_seconds", float, 10.0, "champion."),
        )
        if not champion.tracking_uri.startswith(("http://", "https://")):
            raise MonitorError(
                "CONFIG_INVALID",
                f"setting champion.tracking_uri: expected an http(s) URL, got {champion.tracking_uri!r}",
            )
    elif "reference" not in raw:
        raise MonitorError(
            "CONFIG_INVALID",
            "setting reference: required, or a champion section to take it from the registry",
        )
    labels = None
    if "labels" in raw:
        lb = _require(raw, "labels", dict, "")
        source = label_source(contract_of())
        labels = LabelsConfig(
            warehouse_url=_expand(str(lb["warehouse_url"])) if lb.get("warehouse_url") else "",
            warehouse_url_file=_expand(str(lb["warehouse_url_file"]))
            if lb.get("warehouse_url_file")
            else None,
            pii_key_file=str(path_of(lb["pii_key_file"])) if lb.get("pii_key_file") else None,
            horizon_hours=_optional(lb, "horizon_hours", int, source.horizon_hours, "labels."),
            label_delay_hours=_optional(lb, "label_delay_hours", int, source.label_delay_hours, "labels."),
            min_rows=_optional(lb, "min_rows", int, 100, "labels."),
            table=source.table,
            id_column=source.id_column,
            event_column=source.event_column,
            reported_column=source.reported_column,
        )
        if not labels.warehouse_url and not labels.warehouse_url_file:
            raise MonitorError(
                "CONFIG_INVALID", "setting labels.warehouse_url (or labels.warehouse_url_file): required"
            )
        if labels.horizon_hours <= 0 or labels.label_delay_hours < 0 or labels.min_rows < 1:
            raise MonitorError(
                "CONFIG_INVALID",
                "settings labels.horizon_hours (> 0), labels.label_delay_hours (>= 0), "
                "labels.min_rows (>= 1)",
            )

    alerts_raw = _optional(raw, "alerts", dict, {}, "")
    alerts = AlertsConfig(
        token_file=str(path_of(alerts_raw["token_file"])) if alerts_raw.get("token_file") else None
    )

    config = MonitorConfig(
        dataset=_require(raw, "dataset", str, ""),
        predictions_dir=path_of(_require(raw, "predictions_dir", str, "")),
        lake_dir=path_of(_require(raw, "lake_dir", str, "")),
        reference=_expand(_require(raw, "reference", str, "")) if "reference" in raw else "",
        numerical=numerical,
        categorical=categorical,
        prediction_column=_optional(raw, "prediction_column", str, "probability", ""),
        window_minutes=_optional(raw, "window_minutes", int, 60, ""),
        schedule_seconds=_optional(raw, "schedule_seconds", int, 0, ""),
        max_rows=_optional(raw, "max_rows", int, 50_000, ""),
        drift_share=_optional(raw, "drift_share", float, 0.5, ""),
        served_only=_optional(raw, "served_only", bool, True, ""),
        report_mode=_optional(raw, "report_mode", str, "preset", ""),
        policy=policy,
        webhook=webhook,
        champion=champion,
        labels=labels,
        alerts=alerts,
    )
    if config.report_mode not in ("preset", "drift_only"):
        raise MonitorError(
            "CONFIG_INVALID",
            f"setting report_mode: expected preset or drift_only, got {config.report_mode!r}",
        )
    if config.window_minutes <= 0:
        raise MonitorError("CONFIG_INVALID", "setting window_minutes: expected a positive number of minutes")
    if config.max_rows < 0 or config.schedule_seconds < 0:
        raise MonitorError("CONFIG_INVALID", "settings max_rows and schedule_seconds must be >= 0")
    if not 0 < config.drift_share <= 1:
        raise MonitorError(
            "CONFIG_INVALID", f"setting drift_share: expected (0, 1], got {config.drift_share}"
        )
    if not config.dataset.replace("_", "").replace("-", "").isalnum():
        raise MonitorError(
            "CONFIG_INVALID", f"setting dataset: expected [A-Za-z0-9_-]+, got {config.dataset!r}"
        )
    return config


def load_config(path: str | Path) -> MonitorConfig:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as err:
        raise MonitorError("CONFIG_INVALID", f"monitoring config {p}: cannot read ({err})") from err
    except yaml.YAMLError as err:
        raise MonitorError("CONFIG_INVALID", f"monitoring config {p}: not valid YAML ({err})") from err
    # Relative paths are taken from the working directory, as the CLI and the Makefile run from the root.
    return parse_config(raw, Path.cwd())
