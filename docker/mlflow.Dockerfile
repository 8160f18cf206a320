# syntax=docker/dockerfile:1.7
# MLflow tracking server and model registry (PostgreSQL backend store, S3/MinIO artifacts through the
# server's artifact proxy). Build from the repository root:
#   docker build -f docker/mlflow.Dockerfile -t driftwood-mlflow .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/requirements/mlflow.lock /tmp/mlflow.lock
RUN python -m venv /opt/mlflow-venv \
 && /opt/mlflow-venv/bin/pip install --no-cache-dir -r /tmp/mlflow.lock

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 mlflow && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/mlflow mlflow
ENV PATH=/opt/mlflow-venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
COPY --from=build /opt/mlflow-venv /opt/mlflow-venv
# The DAGs' `mlflow_evaluate` step runs in this image (`python -m driftwood_mlflow.evaluate`, the
# MLflow it evaluates with is the server's own): dags/driftwood_steps.py, DRIFTWOOD_MLFLOW_IMAGE.
COPY --chown=root:root python/driftwood_mlflow/ /opt/driftwood/python/driftwood_mlflow/
ENV PYTHONPATH=/opt/driftwood/python
USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4).status == 200 else 1)"]
# The backend store, artifact destination and allowed hosts come from the platform (compose/Kubernetes):
# MLFLOW_BACKEND_STORE_URI, MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_SERVER_ALLOWED_HOSTS.
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000", "--serve-artifacts"]
# Last, so that a new revision changes only this layer and every other one comes from the cache.
ARG VCS_REF=unknown
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="driftwood-mlflow" \
      org.opencontainers.image.description="MLflow tracking server for Driftwood" \
      org.opencontainers.image.source="https://github.com/driftwood-mlops/driftwood" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
