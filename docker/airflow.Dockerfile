# syntax=docker/dockerfile:1.7
# Airflow 3 (api-server, scheduler, dag-processor, Celery worker) with Driftwood's DAGs and providers.
# Built on the pinned Python base from docker/requirements/airflow.lock, which is constrained by the
# same requirements/airflow.lock the test suite runs against: the image runs the versions that were
# tested. Build from the repository root: docker build -f docker/airflow.Dockerfile -t driftwood-airflow .
# --build-arg SPARK=1 adds what the batch scoring DAG's spark engine runs on the worker: Java 17 and
# the project's mlflow venv (mlflow and pyspark from requirements/mlflow.lock, as the tests ran them)
# at <root>/.venvs/mlflow, where dags/driftwood_scoring.py looks by default. Off by default: about a
# gigabyte and minutes of build that the node engine does not need (docs/scoring.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/requirements/airflow.lock /tmp/airflow.lock
RUN python -m venv /opt/airflow-venv \
 && /opt/airflow-venv/bin/pip install --no-cache-dir -r /tmp/airflow.lock
ARG SPARK=0
COPY requirements/mlflow.lock /tmp/mlflow.lock
# The folder exists either way, so the runtime stage copies it either way (empty without Spark).
RUN mkdir -p /opt/airflow/.venvs \
 && if [ "$SPARK" = 1 ]; then \
      python -m venv /opt/airflow/.venvs/mlflow \
      && /opt/airflow/.venvs/mlflow/bin/pip install --no-cache-dir -r /tmp/mlflow.lock; \
    fi

FROM ${PYTHON_IMAGE} AS runtime
# uid 50000 as in the official apache/airflow image, so volume permissions carry over.
RUN useradd --uid 50000 --gid 0 --create-home --home-dir /opt/airflow airflow
ARG SPARK=0
# The man-page folder: slim images leave it out, and the JRE's postinst links into it.
# hadolint ignore=DL3008
RUN if [ "$SPARK" = 1 ]; then \
      mkdir -p /usr/share/man/man1 \
      && apt-get update \
      && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
      && rm -rf /var/lib/apt/lists/* \
      && java -version; \
    fi
ENV PATH=/opt/airflow-venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DRIFTWOOD_RUNNER=docker \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/airflow-venv /opt/airflow-venv
COPY --from=build /opt/airflow/.venvs /opt/airflow/.venvs
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
# The spark engine's job, where the DAG submits it from (<root>/python); unused by the node engine.
COPY python/driftwood_spark_scoring.py /opt/airflow/python/
# The DAG factory makes every dataset's DAGs from the contracts deployed with it (the steps get
# DRIFTWOOD_CONTRACTS_DIR, which may name another folder).
COPY --chown=airflow:0 contracts/ /app/contracts/
ENV DRIFTWOOD_DAG_CONTRACTS_DIR=/app/contracts
USER 50000:0
WORKDIR /opt/airflow
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/api/v2/monitor/health', timeout=5).status == 200 else 1)"]
ENTRYPOINT ["airflow"]
CMD ["api-server"]
# Last, so that a new revision changes only this layer and every other one comes from the cache.
ARG VCS_REF=unknown
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="driftwood-airflow" \
      org.opencontainers.image.description="Airflow with the Driftwood DAGs" \
      org.opencontainers.image.source="https://github.com/driftwood-mlops/driftwood" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
