"""Readable task logs for Driftwood steps.

A step writes pino JSON lines on stderr (``{"level":30,"time":…,"pid":…,"msg":"train: done",…}``), its
result as one JSON line on stdout, and, when it fails, one plain line ``driftwood <step>: <CODE>:
<message>``. ``StepLog`` reads that output line by line, whichever runner carried it (a process, a
container, a pod), and writes each line on the task's logger as ``<message> key=value key=value``
at the line's own level: the keys a reader looks for first (dataset, snapshot, version, run id,
rows), no ``time``/``pid``/``hostname`` noise, long values cut. The step's failure line is logged
at ERROR and kept (``StepLog.error``: ``<CODE>: <message>``) for the exception the task fails with.
When a line names an MLflow run, one more line links to it in the MLflow UI. Lines that are not
JSON pass through as they are.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

# pino's numeric levels (trace 10 … fatal 60) as Python's.
PINO_LEVELS = {
    10: logging.DEBUG,
    20: logging.DEBUG,
    30: logging.INFO,
    40: logging.WARNING,
    50: logging.ERROR,
    60: logging.CRITICAL,
}
# pino's own bookkeeping (and the logger's name): the task log has its own time and knows the step.
NOISE = frozenset({"level", "time", "pid", "hostname", "msg", "v"})
LOGGER_NAME = "driftwood"
# What a reader scans for first, in this order; every other field follows in the step's own order.
FIRST_KEYS = (
    "dataset",
    "snapshot",
    "version",
    "candidate",
    "champion",
    "model",
    "runId",
    "runName",
    "experimentId",
    "rows",
    "cutoff",
)
# Codes that end a step with "nothing to act on" (exit 99, the task is skipped): worth a warning,
# not an error (tasks/src/errors.ts).
NOTHING_TO_ACT_ON = frozenset({"GATE_NOT_PASSED", "NOTHING_NEW"})
MAX_VALUE = 120
MAX_NESTED = 80
# A content digest (a snapshot or features id, 64 hex digits), alone or in a path, is told apart by
# its first 12 digits (an MLflow run id, 32, stays whole).
DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{40,}(?![0-9a-f])")
DIGEST_SHOWN = 12

# How the CLI reports a failure (tasks/src/cli.ts, report()): one plain line on stderr.
_CLI_ERROR = re.compile(r"^driftwood (?P<step>[\w-]+): (?P<code>[A-Z][A-Z0-9_]*): (?P<message>.*)$")
_CLI_UNEXPECTED = re.compile(r"^driftwood (?P<step>[\w-]+): unexpected error: (?P<message>.*)$")
_RUN_ID_KEYS = ("runId", "run_id")
_EXPERIMENT_KEYS = ("experimentId", "experiment_id")


def format_value(value: Any) -> str:
    """One field's value as it reads in a log line: numbers short, ids short, text quoted when it has
    spaces, nested values as compact JSON, everything cut to a line's worth."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".4g")
    if isinstance(value, str):
        text = _cut(DIGEST.sub(lambda m: m[0][:DIGEST_SHOWN] + "…", value), MAX_VALUE)
        return json.dumps(text, ensure_ascii=False) if (not text or re.search(r"[\s\"=]", text)) else text
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return _cut(",".join(format_value(v) for v in value), MAX_NESTED)
    return _cut(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str), MAX_NESTED)


def format_fields(record: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> str:
    """``key=value`` pairs of a record's fields: FIRST_KEYS first, noise and ``skip`` left out."""
    keys = [k for k in FIRST_KEYS if k in record]
    keys += [k for k in record if k not in FIRST_KEYS]
    parts = [
        f"{k}={format_value(record[k])}"
        for k in keys
        if k not in NOISE and k not in skip and not (k == "name" and record[k] == LOGGER_NAME)
    ]
    return " ".join(parts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mlflow_ui_url(env: Mapping[str, str]) -> str | None:
    """Where a person opens MLflow: DRIFTWOOD_MLFLOW_UI_URL (the dashboard's link too), else
    MLFLOW_TRACKING_URI when it is an http(s) server. Credentials in the URL are dropped: a log
    must not carry them."""
    for name in ("DRIFTWOOD_MLFLOW_UI_URL", "MLFLOW_TRACKING_URI"):
        value = (env.get(name) or "").strip()
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return None


# MLflow's UI opens an experiment in its GenAI view unless the link asks for the model-training
# one (its own default, kept per browser): every link to a Driftwood run asks.
MLFLOW_UI_VIEW = "workflowType=machine_learning"


def mlflow_run_url(ui: str, run_id: str, experiment_id: str | None) -> str:
    """The run's page in MLflow's UI (its routes ``#/experiments/<id>/runs/<run>`` and, without the
    experiment, ``#/runs/<run>``, which opens the same page), in the model-training view."""
    run = quote(run_id, safe="")
    if experiment_id:
        return f"{ui}/#/experiments/{quote(experiment_id, safe='')}/runs/{run}?{MLFLOW_UI_VIEW}"
    return f"{ui}/#/runs/{run}?{MLFLOW_UI_VIEW}"


class StepLog:
    """Reads one run of a step, line by line, and writes each line readable on ``logger``.

    ``error`` is the failure the step reported last (``<CODE>: <message>``), or None.
    """

    def __init__(self, logger: Any, mlflow_ui: str | None = None) -> None:
        self._logger = logger
        self._mlflow_ui = mlflow_ui
        self._linked: set[str] = set()
        self._experiment: str | None = None
        # Inside a stack trace that follows an unexpected error: its lines stay at ERROR.
        self._trace = False
        self.error: str | None = None

    def read(self, raw: str) -> None:
        # One call may carry several lines (a pod log message with its continuation lines).
        for part in raw.splitlines() or [""]:
            for level, text in self.lines(part):
                _emit(self._logger, level, text)

    def lines(self, raw: str) -> list[tuple[int, str]]:
        """The log lines (level, text) one line of the step's output becomes."""
        line = raw.rstrip("\r\n")
        record = _json_object(line)
        if record is None:
            return [self._plain(line)]
        self._trace = False
        out = [self._pino(record) if _is_pino(record) else self._result(record)]
        link = self._run_link(record)
        if link:
            out.append((logging.INFO, f"MLflow run: {link}"))
        return out

    def _plain(self, line: str) -> tuple[int, str]:
        # The failure line stays as the step wrote it (the same words as at a terminal).
        if m := _CLI_ERROR.match(line):
            code, message = m["code"], m["message"]
            self._trace = False
            self.error = f"{code}: {message}"
            return (logging.WARNING if code in NOTHING_TO_ACT_ON else logging.ERROR), line
        if m := _CLI_UNEXPECTED.match(line):
            self._trace = True
            self.error = f"unexpected error: {m['message']}"
            return logging.ERROR, line
        if self._trace and line[:1].isspace():
            return logging.ERROR, line
        self._trace = False
        return logging.INFO, line

    def _pino(self, record: Mapping[str, Any]) -> tuple[int, str]:
        level = PINO_LEVELS.get(int(record["level"]), logging.INFO)
        message = str(record.get("msg", ""))
        err = record.get("err") if isinstance(record.get("err"), Mapping) else None
        skip = frozenset({"err"}) if err else frozenset()
        if level >= logging.ERROR:
            code = record.get("code") or (err or {}).get("code")
            said = message or str((err or {}).get("message", ""))
            if code:
                said = f"{code}: {said}"
                skip |= {"code"}
            self.error = said
            message = said
        fields = format_fields(record, skip)
        return level, f"{message} {fields}" if fields else message

    def _result(self, record: Mapping[str, Any]) -> tuple[int, str]:
        # The step's result (stdout, its last line): its plain fields, and the names of the nested
        # ones; the whole document is the task's XCom and the step's results/<step>.json.
        nested = [k for k, v in record.items() if isinstance(v, (dict, list))]
        parts = [format_fields(record, frozenset(nested))]
        if nested:
            parts.append(_cut("nested: " + ",".join(nested), MAX_NESTED))
        return logging.INFO, " ".join(["result:", *filter(None, parts)])

    def _run_link(self, record: Mapping[str, Any]) -> str | None:
        experiment = next((str(record[k]) for k in _EXPERIMENT_KEYS if record.get(k)), None)
        if experiment:
            self._experiment = experiment
        run = next((str(record[k]) for k in _RUN_ID_KEYS if record.get(k)), None)
        if not run or not self._mlflow_ui or run in self._linked:
            return None
        self._linked.add(run)
        return mlflow_run_url(self._mlflow_ui, run, experiment or self._experiment)


class LineRouter:
    """Stands in for the logger of code that logs a step's output one line at a time as
    ``log.info("%s", line)`` (Airflow's SubprocessHook, DockerOperator's log fetching): those
    lines go to ``step_log``, every other call to ``logger`` as before."""

    def __init__(self, logger: Any, step_log: StepLog) -> None:
        self._logger = logger
        self._step_log = step_log

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> Any:
        if msg == "%s" and len(args) == 1 and isinstance(args[0], str) and not kwargs:
            self._step_log.read(args[0])
            return None
        return self._logger.info(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


def _json_object(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_pino(record: Mapping[str, Any]) -> bool:
    level = record.get("level")
    return isinstance(level, int) and not isinstance(level, bool) and ("msg" in record or "time" in record)


_METHODS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


def _emit(logger: Any, level: int, text: str) -> None:
    # "%s": a message may hold a per cent sign of its own.
    getattr(logger, _METHODS.get(level, "info"))("%s", text)
