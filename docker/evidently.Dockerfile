# syntax=docker/dockerfile:1.7
# The Evidently drift sidecar (monitoring/): compares served traffic with the training snapshot,
# exports drift metrics and calls the retraining webhook. Build from the repository root:
#   docker build -f docker/evidently.Dockerfile -t driftwood-evidently .
# The Python dependencies are the project's own lock (requirements/evidently.lock, the tested versions).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/evidently.lock /tmp/evidently.lock
RUN python -m venv /opt/evidently-venv \
 && /opt/evidently-venv/bin/pip install --no-cache-dir -r /tmp/evidently.lock

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10002 sidecar && useradd --uid 10002 --gid 10002 --create-home --home-dir /home/sidecar sidecar
ENV PATH=/opt/evidently-venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    DRIFTWOOD_SIDECAR_PORT=8000 \
    DRIFTWOOD_MONITOR_CONFIG=/etc/driftwood/monitor.yaml
COPY --from=build /opt/evidently-venv /opt/evidently-venv
COPY --chown=root:root monitoring/__init__.py /app/monitoring/__init__.py
COPY --chown=root:root monitoring/evidently/ /app/monitoring/evidently/
# The sidecar reads its dataset's contract (where the labels are, the retrain DAG).
COPY --chown=root:root contracts/ /app/contracts/
USER 10002:10002
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['DRIFTWOOD_SIDECAR_PORT'], timeout=4).status == 200 else 1)"]
# Same image as monitoring/evidently/Dockerfile, with the OCI labels the release pipeline sets.
# The configuration file is mounted by the platform at DRIFTWOOD_MONITOR_CONFIG.
ENTRYPOINT ["python", "-m", "monitoring.evidently"]
# Last, so that a new revision changes only this layer and every other one comes from the cache.
ARG VCS_REF=unknown
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="driftwood-evidently" \
      org.opencontainers.image.description="Driftwood drift sidecar (Evidently)" \
      org.opencontainers.image.source="https://github.com/driftwood-mlops/driftwood" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
