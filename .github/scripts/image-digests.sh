#!/usr/bin/env bash
# Prints {"serving": "sha256:…", "tasks": "sha256:…", "mlflow": "sha256:…"} for the images pushed for one revision, read
# from the registry (no pull). Deployments run images by digest, never by a mutable tag.
#   .github/scripts/image-digests.sh ghcr.io/driftwood-mlops sha-<commit>
set -euo pipefail
registry=${1:?usage: image-digests.sh <registry/owner> <tag>}
tag=${2:?usage: image-digests.sh <registry/owner> <tag>}
out="{"
sep=""
for component in serving tasks mlflow; do
  digest=$(docker buildx imagetools inspect "${registry}/driftwood-${component}:${tag}" --format '{{json .Manifest}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "no digest for driftwood-${component}:${tag}" >&2; exit 1; }
  out+="${sep}\"${component}\": \"${digest}\""
  sep=", "
done
echo "${out}}"
