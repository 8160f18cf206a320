"""Helpers for the orchestration tests: an isolated Airflow home with a migrated metadata database
(SQLite, or a throwaway database on the local PostgreSQL), Airflow processes started in their own
process groups, and a minimal Airflow REST client (the same calls docs/orchestration.md documents
for other callers)."""

from __future__ import annotations

import atexit
import base64
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = ROOT / ".venvs" / "airflow" / "bin" / "airflow"
# The same variable the TypeScript integration tests read: a superuser connection to the local server.
PG_ADMIN = os.environ.get("DRIFTWOOD_TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")


def worker_hostname() -> str:
    """``[core] hostname_callable`` for workers sharing one machine: each reports its own name
    (``DRIFTWOOD_WORKER_HOSTNAME``) as two machines would report theirs; otherwise the FQDN."""
    return os.environ.get("DRIFTWOOD_WORKER_HOSTNAME") or socket.getfqdn()


@contextmanager
def postgres_database(prefix: str = "airflow_test") -> Iterator[str]:
    """A throwaway database ``<prefix>_<random>`` on the PG_ADMIN server, dropped on exit.

    Yields its SQLAlchemy URL (psycopg2 driver), the form Airflow's ``sql_alchemy_conn`` takes.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        parts = urlsplit(PG_ADMIN)
        yield urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{name}", "", ""))
    finally:
        # FORCE: a connection a killed process left behind must not keep the database alive.
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def mlflow_server(port: int) -> Iterator[str]:
    """The MLflow server steps log to: DRIFTWOOD_TEST_MLFLOW_URI when given, else one started on
    `port` (scripts/mlflow.sh, its own folder, emptied first: a re-run must not find the experiments
    of the last one) and stopped afterwards."""
    given = os.environ.get("DRIFTWOOD_TEST_MLFLOW_URI")
    if given:
        yield given
        return
    script = str(ROOT / "scripts" / "mlflow.sh")
    folder = ROOT / ".driftwood" / "test" / f"mlflow-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    started = subprocess.run([script, "start", str(port), str(folder)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([script, "stop", str(port)], capture_output=True, check=False)


def postgres_database_exists(name: str) -> bool:
    import psycopg2

    with psycopg2.connect(PG_ADMIN) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        found = cur.fetchone() is not None
    conn.close()
    return found


def _pg_admin(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def airflow_home(name: str, dags_folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A fresh AIRFLOW_HOME under .driftwood/test/<name> with a migrated database; returns its env.

    The database is SQLite in that home unless ``extra`` sets AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    (e.g. to a ``postgres_database()``). A SQLite home gets its own copy of the session's migrated
    template (``sqlite_template()``); another database is migrated through scripts/airflow.sh.
    """
    home = ROOT / ".driftwood" / "test" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k not in ("AIRFLOW_HOME",)
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "DRIFTWOOD_ROOT": str(ROOT),
            "PYTHONPATH": str(ROOT / "dags"),
        }
    )
    env.update(extra or {})
    db = home / "airflow.db"
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{db}":
        _sqlite_copy(sqlite_template(), db)
        # What scripts/airflow.sh leaves in a home it migrated: it does not migrate this one again.
        (home / ".migrated").touch()
        _write_home_secrets(home)
    else:
        _db_ready(env)
    return env


# Migrated SQLite templates of this process, by Airflow version.
_SQLITE_TEMPLATES: dict[str, Path] = {}


def sqlite_template() -> Path:
    """An empty SQLite Airflow database migrated once per test session (and per Airflow version),
    which each SQLite ``airflow_home()`` copies instead of running ``airflow db migrate`` again (about
    20 s of CLI start and schema check per home). It lives in a private folder of this process that
    nothing else opens, so every copy is of an empty, migrated database; the folder is removed at exit.
    """
    version = importlib.metadata.version("apache-airflow")
    template = _SQLITE_TEMPLATES.get(version)
    if template is None:
        home = Path(tempfile.mkdtemp(prefix=f"airflow-template-{version}-", dir=_test_folder()))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            }
        )
        _db_ready(env)
        template = _SQLITE_TEMPLATES[version] = home / "airflow.db"
    return template


def _write_home_secrets(home: Path) -> None:
    """The home's airflow.cfg with the three values Airflow generates when it writes a missing one
    (Fernet key, API secret key, JWT secret); every other setting keeps its default. Without it, the
    processes a test starts together would each write the file with their own keys, and a trigger's
    kwargs encrypted by one would not decrypt in the triggerer (the migration used to write it first).
    """
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    secret_key = base64.b64encode(os.urandom(16)).decode()
    jwt_secret = base64.b64encode(os.urandom(16)).decode()
    config = home / "airflow.cfg"
    config.write_text(
        f"[core]\nfernet_key = {fernet_key}\n\n[api]\nsecret_key = {secret_key}\n\n"
        f"[api_auth]\njwt_secret = {jwt_secret}\n"
    )
    config.chmod(0o600)


def _test_folder() -> Path:
    folder = ROOT / ".driftwood" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sqlite_copy(source: Path, dest: Path) -> None:
    """A consistent copy through SQLite's backup API (the template may still hold a WAL file)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _db_ready(env: Mapping[str, str]) -> None:
    migrate = subprocess.run(
        [str(ROOT / "scripts" / "airflow.sh"), "db-ready"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]


def run_airflow(
    args: list[str], env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRFLOW_BIN), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Services:
    """Airflow processes, each the leader of its own process group, stopped together."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [str(AIRFLOW_BIN), *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start_airflow(self, components: Iterable[str], api_port: int) -> None:
        """Airflow's own processes by name, as ``airflow <name>`` runs them: ``api-server`` (one worker,
        on 127.0.0.1:``api_port``), ``scheduler``, ``dag-processor``, ``triggerer``."""
        for name in components:
            api = ["--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"]
            self.start(name, [name, *api] if name == "api-server" else [name])

    def assert_running(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}: {self.tail(name)}"

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Workers forked by the executor share the group: make sure none outlives the test.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class AirflowClient:
    """Airflow 3 REST: a JWT from /auth/token, then /api/v2 with a bearer token."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.token: str | None = None

    def login(self) -> str:
        status, body = self._send(
            "POST", "/auth/token", {"username": self.username, "password": self.password}
        )
        if status not in (200, 201):
            raise RuntimeError(f"POST /auth/token: HTTP {status}: {body}")
        self.token = str(body["access_token"])
        return self.token

    def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        if self.token is None:
            self.login()
        return self._send(method, path, payload, {"Authorization": f"Bearer {self.token}"})

    def _send(
        self, method: str, path: str, payload: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, _json(res.read())
        except urllib.error.HTTPError as err:
            return err.code, _json(err.read())


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def wait_for(what: str, probe: Any, timeout: float, interval: float = 1.0) -> Any:
    """Polls ``probe()`` until it returns something truthy; the last value is in the error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, urllib.error.URLError) as err:
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@dataclass(frozen=True)
class AirflowService:
    """The session's Airflow: where it answers, its processes, and the environment of its steps."""

    base: str
    #: the Airflow processes' environment (AIRFLOW_HOME, the metadata database, the steps' settings)
    env: dict[str, str]
    #: the settings a step run by hand next to it needs: same DRIFTWOOD_HOME, contracts, MLflow, PII key
    step_env: dict[str, str]
    home: Path
    services: Services
    metadata_db: str
    mlflow: str
    secrets: Path

    def password_file(self, user: str) -> Path:
        return self.secrets / f"{user}-password"

    def client(self, user: str) -> AirflowClient:
        return AirflowClient(self.base, user, self.password_file(user).read_text().strip())


def airflow_service_contracts(folder: Path) -> Path:
    """A contracts folder with the churn contract alone, its pipeline cut down to ``ingest`` and started
    only by its raw asset (no time schedule), so a landing's run is short and nothing starts runs on the
    clock; its retrain is the checked-in one."""
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "contracts" / "contract.schema.json", folder / "contract.schema.json")
    contract = yaml.safe_load((ROOT / "contracts" / "churn.yaml").read_text())
    contract["orchestration"]["pipeline"] = {"schedule": None, "steps": ["ingest"], "on_new_data": True}
    (folder / "churn.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    return folder
