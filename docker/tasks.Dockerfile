# syntax=docker/dockerfile:1.7
# The `driftwood` CLI: every pipeline step (simulate, ingest, train, promote, forget) as a container,
# run by Airflow's DockerOperator / KubernetesPodOperator. Build from the repository root:
#   docker build -f docker/tasks.Dockerfile -t driftwood-tasks .
# Base images are pinned by digest (see docker/README.md and docker/pin-base-images.sh).
ARG NODE_IMAGE=node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0

FROM ${NODE_IMAGE} AS build
# better-sqlite3 is compiled here: its install script would download a prebuilt binary, which a
# build with access to the package registries alone cannot. node-gyp gets a toolchain and Node's
# own headers (npm_config_nodedir), so it downloads nothing either.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /src
# Manifests first: the dependency layer is reused until a package.json or the lock changes.
COPY package.json package-lock.json tsconfig.base.json ./
COPY tasks/package.json tasks/
COPY serving/package.json serving/
# Install scripts stay off (tfjs-node's libtensorflow download must not run: TF.js uses its wasm
# backend); the one native addon, better-sqlite3, is then built on its own. `npm install` with the
# committed lock rather than `npm ci`, as in the Makefile: mirrors that carry only some platforms'
# optional packages leave them out of the lock, which `npm ci` refuses.
RUN npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
 && npm rebuild better-sqlite3 \
 && node -e "require('better-sqlite3')(':memory:').close()"
COPY tasks/ tasks/
COPY serving/ serving/
RUN npx tsc -b tasks serving \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    DRIFTWOOD_HOME=/var/lib/driftwood \
    DRIFTWOOD_TF_BACKEND=wasm
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./
COPY --from=build --chown=root:root /src/node_modules/ node_modules/
COPY --from=build --chown=root:root /src/tasks/package.json tasks/
COPY --from=build --chown=root:root /src/tasks/dist/ tasks/dist/
COPY --from=build --chown=root:root /src/serving/package.json serving/
COPY --from=build --chown=root:root /src/serving/dist/ serving/dist/
# Ingest, snapshot and train read the dataset contracts (DRIFTWOOD_CONTRACTS_DIR, /app/contracts).
COPY --chown=root:root contracts/ contracts/
# Train copies the python_function loader into every model version (tasks/src/train/mlmodel.ts
# finds it at /app/python/driftwood_pyfunc, beside tasks/).
COPY --chown=root:root python/driftwood_pyfunc/ python/driftwood_pyfunc/
# The code is root-owned and read-only to the process; only DRIFTWOOD_HOME is writable.
RUN mkdir -p /var/lib/driftwood && chown 1000:1000 /var/lib/driftwood
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["node", "/app/tasks/dist/cli.js", "--help"]
ENTRYPOINT ["node", "/app/tasks/dist/cli.js"]
CMD ["--help"]
# Last, so that a new revision changes only this layer and every other one comes from the cache.
ARG VCS_REF=unknown
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="driftwood-tasks" \
      org.opencontainers.image.description="Driftwood pipeline steps (the driftwood CLI)" \
      org.opencontainers.image.source="https://github.com/driftwood-mlops/driftwood" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
