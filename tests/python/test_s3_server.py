"""The S3 stand-in of the offline compose stack (docker/offline/s3-server), run as a process here with
the tools venv's moto: what it served before a restart is all there after it, and a recording it
cannot replay whole stops it from starting rather than letting it serve with data missing."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "docker" / "offline" / "s3-server"
PYTHON = ROOT / ".venvs" / "tools" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3:
    port: int
    folder: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def recording(self) -> Path:
        return self.folder / "recording.jsonl"

    @property
    def ready(self) -> Path:
        return self.folder / "ready"

    def start(self) -> subprocess.Popen[str]:
        self.started = [p for p in self.started if p.poll() is None]
        self.ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            "S3_PORT": str(self.port),
            "MOTO_RECORDER_FILEPATH": str(self.recording),
            "S3_READY_FILE": str(self.ready),
        }
        proc = subprocess.Popen(
            [str(PYTHON), str(SERVER)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.started.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[str]) -> None:
        for _ in range(600):
            if self.ready.exists():
                return
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"s3-server exited {proc.returncode}: {out}")
            time.sleep(0.1)
        raise AssertionError("s3-server never became ready")

    def stop(self, proc: subprocess.Popen[str]) -> str:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        return out

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        # As boto3 sends them: a form content type would have the server parse the body as a form.
        # moto checks no signature, but serves objects only to a request that names a key.
        headers = {
            "Content-Type": "application/octet-stream",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=0",
        }
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", body, headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as res:
            return bytes(res.read())


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3]:
    server = S3(free_port(), tmp_path)
    yield server
    for proc in server.started:
        proc.kill()
        proc.wait()


def objects() -> dict[str, bytes]:
    # Large enough that each recorded line is written in more than one buffered write.
    return {f"lake/part-{i:02d}.bin": os.urandom(256 * 1024 + i * 4096) for i in range(24)}


def test_everything_served_before_a_restart_is_there_after_it(s3: S3) -> None:
    proc = s3.start()
    s3.wait_ready(proc)
    for bucket in ("driftwood-lake", "mlflow-artifacts"):
        s3.request("PUT", f"/{bucket}")
    data = objects()
    # Uploads at once, as the pipeline's steps and MLflow make them: each line of the recording
    # must stay whole while other threads write theirs.
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda kv: s3.request("PUT", f"/driftwood-lake/{kv[0]}", kv[1]), data.items()))
    s3.stop(proc)

    proc = s3.start()
    s3.wait_ready(proc)
    assert "<Name>mlflow-artifacts</Name>" in s3.request("GET", "/mlflow-artifacts").decode()
    assert s3.request("GET", "/driftwood-lake").decode().count("<Key>") == len(data)
    for key, body in data.items():
        assert s3.request("GET", f"/driftwood-lake/{key}") == body, key
    out = s3.stop(proc)
    assert f"replayed {len(data) + 2} of {len(data) + 2} recorded requests" in out, out
    assert "(0 failed, 0 unreadable lines)" in out, out


def test_a_cut_off_last_line_is_dropped_and_named(s3: S3) -> None:
    proc = s3.start()
    s3.wait_ready(proc)
    s3.request("PUT", "/mlflow-artifacts")
    s3.stop(proc)
    with s3.recording.open("a") as f:
        f.write('{"method": "PUT", "url": "http://127.0.0.1/mlflow-artifacts/half')  # a crash mid-write

    proc = s3.start()
    s3.wait_ready(proc)
    assert "<Name>mlflow-artifacts</Name>" in s3.request("GET", "/mlflow-artifacts").decode()
    out = s3.stop(proc)
    assert "dropped a cut-off last line" in out, out


def test_a_recording_it_cannot_read_whole_stops_it_from_starting(s3: S3) -> None:
    proc = s3.start()
    s3.wait_ready(proc)
    s3.request("PUT", "/driftwood-lake")
    s3.request("PUT", "/driftwood-lake/a.csv", b"id\n1\n")
    s3.stop(proc)
    lines = s3.recording.read_text().splitlines()
    s3.recording.write_text("\n".join([lines[0], "not a record", *lines[1:]]) + "\n")

    proc = s3.start()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "line 2 of" in out and "could not be replayed whole" in out, out
    assert not s3.ready.exists()
