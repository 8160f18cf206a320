# syntax=docker/dockerfile:1.7
# The prediction API (Fastify), serving the MLflow registry's `champion`. Build from the repository root:
#   docker build -f docker/serving.Dockerfile -t driftwood-serving .
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
    DRIFTWOOD_HOME=/tmp/driftwood \
    DRIFTWOOD_TF_BACKEND=wasm \
    DRIFTWOOD_API_HOST=0.0.0.0 \
    DRIFTWOOD_API_PORT=8080
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./
COPY --from=build --chown=root:root /src/node_modules/ node_modules/
COPY --from=build --chown=root:root /src/tasks/package.json tasks/
COPY --from=build --chown=root:root /src/tasks/dist/ tasks/dist/
COPY --from=build --chown=root:root /src/serving/package.json serving/
COPY --from=build --chown=root:root /src/serving/dist/ serving/dist/
# The API serves every dataset its contracts declare (DRIFTWOOD_CONTRACTS_DIR, /app/contracts).
COPY --chown=root:root contracts/ contracts/
USER 1000:1000
EXPOSE 8080
# Liveness only: readiness (a model loaded) is /health/ready, probed by the orchestrator.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/tasks/dist/cli.js"]
CMD ["serve"]
# Last, so that a new revision changes only this layer and every other one comes from the cache.
ARG VCS_REF=unknown
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="driftwood-serving" \
      org.opencontainers.image.description="Driftwood prediction API" \
      org.opencontainers.image.source="https://github.com/driftwood-mlops/driftwood" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
