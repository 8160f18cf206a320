#!/usr/bin/env bash
# Base-image pins of docker/*.Dockerfile (`ARG *_IMAGE=<repo>:<tag>@sha256:<digest>`).
#   docker/pin-base-images.sh --check    every pinned digest still resolves in its registry (CI runs this)
#   docker/pin-base-images.sh --update   re-resolve each tag to today's digest and rewrite the ARG lines
# Needs a Docker client with buildx (`docker buildx imagetools inspect` reads the registry, no pull).
set -euo pipefail
mode=${1:---check}
cd "$(dirname "$0")"
status=0
for file in *.Dockerfile; do
  while IFS= read -r line; do
    ref=${line#*=}
    image=${ref%@*}
    if [ "$mode" = --update ]; then
      digest=$(docker buildx imagetools inspect "$image" --format '{{json .Manifest}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
      sed -i "s|${ref}|${image}@${digest}|" "$file"
      echo "$file: $image@$digest"
    elif docker buildx imagetools inspect "$ref" >/dev/null 2>&1; then
      echo "ok      $file: $ref"
    else
      echo "MISSING $file: $ref does not resolve (run docker/pin-base-images.sh --update)" >&2
      status=1
    fi
  done < <(grep -E '^ARG [A-Z_]+_IMAGE=' "$file")
done
exit "$status"
