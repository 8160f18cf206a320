"""The sidecar's one outbound HTTP client, and the Airflow 3 REST client built on it.

``HttpClient.send`` puts a timeout on every request and retries, a bounded number of times with
exponential backoff and jitter, only what may succeed later: a connection that failed or timed out,
``429`` and ``5xx`` replies (``Retry-After`` is honoured, capped). A ``4xx`` is an answer, returned at
once. A request that must not run twice (``idempotent=False``) is retried only when the server cannot
have acted on it: the connection was refused, or it answered ``429``/``503``. Replies are returned,
not raised; a server that cannot be reached raises ``Unreachable`` naming it. Tunable from the
environment with the same settings as the TypeScript client (tasks/src/http.ts):
``DRIFTWOOD_HTTP_RETRIES`` (3) and ``DRIFTWOOD_HTTP_BACKOFF_MS`` (250); the timeout is the caller's.

``AirflowClient`` logs in with ``POST /auth/token`` (simple auth manager, a JWT), sends it as a bearer
token, and when a call answers ``401`` (the token expired) logs in again once and repeats the call.
Standard library only: the sidecar image carries no HTTP package.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import MonitorError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Statuses that say the server did not act on the request: safe to repeat even a non-idempotent one.
NOT_ACTED_STATUS = frozenset({429, 503})


@dataclass(frozen=True)
class HttpSettings:
    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 30.0

    @classmethod
    def from_env(cls, timeout_seconds: float = 10.0, env: Mapping[str, str] | None = None) -> HttpSettings:
        env = os.environ if env is None else env
        return cls(
            timeout_seconds=timeout_seconds,
            retries=_int_setting(env, "DRIFTWOOD_HTTP_RETRIES", 3, 0, 20),
            backoff_seconds=_int_setting(env, "DRIFTWOOD_HTTP_BACKOFF_MS", 250, 1, 60_000) / 1000,
        )


def _int_setting(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        expected = f"expected an integer {low}..{high}, got {raw!r}"
        raise MonitorError("CONFIG_INVALID", f"setting {name}: {expected}")
    return value


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode(errors="replace")


class Unreachable(MonitorError):
    """No reply after every attempt (connection refused, reset or timed out)."""

    def __init__(self, origin: str, reason: str, attempts: int) -> None:
        super().__init__("HTTP_UNREACHABLE", f"cannot reach {origin} after {attempts} attempt(s) ({reason})")
        self.attempts = attempts


@dataclass
class HttpClient:
    settings: HttpSettings = field(default_factory=HttpSettings)
    sleep: Callable[[float], None] = time.sleep

    def send(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        idempotent: bool = True,
    ) -> Reply:
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                status, reply, retry_after = self._once(method, url, body, headers or {})
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", err)
                refused = isinstance(reason, ConnectionRefusedError)
                if last or not (idempotent or refused):
                    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
                    raise Unreachable(origin, str(reason) or type(reason).__name__, attempt) from err
                self.sleep(self._backoff(attempt, None))
                continue
            retry = status in (RETRY_STATUS if idempotent else NOT_ACTED_STATUS)
            if not retry or last:
                return Reply(status, reply, attempt)
            self.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    def _once(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes, str | None]:
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(req, timeout=self.settings.timeout_seconds) as res:
                return res.status, res.read(), None
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read(), err.headers.get("Retry-After")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        cap = self.settings.max_backoff_seconds
        try:
            seconds = float(retry_after) if retry_after is not None else -1.0
        except ValueError:
            seconds = -1.0
        if seconds >= 0:
            return min(seconds, cap)
        step = min(self.settings.backoff_seconds * 2 ** (attempt - 1), cap)
        return step / 2 + random.random() * step / 2  # jitter: clients that failed together spread out


class AirflowError(MonitorError):
    """Airflow answered, but not with what was asked (a refused login, a non-2xx reply)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__("AIRFLOW_REFUSED", message)
        self.status = status


class AirflowClient:
    """Airflow 3 REST (``/api/v2``) with a JWT from ``/auth/token``, renewed once on ``401``."""

    def __init__(self, base_url: str, username: str, password: str, http: HttpClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.http = http or HttpClient(HttpSettings.from_env())
        self.token: str | None = None
        self.logins = 0

    def login(self) -> str:
        reply = self.http.send(
            "POST",
            f"{self.base_url}/auth/token",
            json.dumps({"username": self.username, "password": self._password}).encode(),
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        self.logins += 1
        if reply.status not in (200, 201):
            raise AirflowError(reply.status, f"auth/token: HTTP {reply.status}: {reply.text(200)}")
        self.token = str(reply.json()["access_token"])
        return self.token

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Reply:
        """One ``/api/v2`` call; the reply whatever its status (a 409 or 404 is for the caller)."""
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if body else {})}
        token = self.token or self.login()
        reply = self.http.send(
            method, url, body, {**headers, "Authorization": f"Bearer {token}"}, idempotent=idempotent
        )
        if reply.status == 401:
            # An expired or revoked token: one fresh login, one more try; a second 401 is the answer.
            token = self.login()
            reply = self.http.send(
                method, url, body, {**headers, "Authorization": f"Bearer {token}"}, idempotent=idempotent
            )
        return reply

    def trigger_dag_run(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/dags/{dag_id}/dagRuns``. The run id makes a repeat a ``409``, never a
        second run, so the call is retried like an idempotent one."""
        return self.request(
            "POST",
            f"/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
        )

    def asset_id(self, uri: str) -> int | None:
        """The id of the asset with exactly this URI, or None when no parsed DAG declares it."""
        reply = self.request("GET", "/api/v2/assets", query={"uri_pattern": uri})
        if reply.status != 200:
            raise AirflowError(reply.status, f"GET /api/v2/assets: HTTP {reply.status}: {reply.text(200)}")
        match = [a for a in (reply.json() or {}).get("assets", []) if a.get("uri") == uri]
        return int(match[0]["id"]) if match else None

    def post_asset_event(self, asset_id: int, extra: Mapping[str, Any]) -> Reply:
        """``POST /api/v2/assets/events``: each call is a new event (and may start a run), so it is
        repeated only when Airflow cannot have recorded it."""
        return self.request(
            "POST", "/api/v2/assets/events", {"asset_id": asset_id, "extra": dict(extra)}, idempotent=False
        )
