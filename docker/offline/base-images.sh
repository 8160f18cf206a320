#!/usr/bin/env bash
# Base images for machines whose container engine cannot pull from a registry.
#
#   docker/offline/base-images.sh     # prints NODE_IMAGE=… and PYTHON_IMAGE=… on its last lines
#
# When the pinned official bases of the Dockerfiles (node:20-bookworm-slim, python:3.11-slim-bookworm)
# can be had, they are used and nothing is built. Otherwise local stand-ins are made from Debian:
#   localhost/driftwood-offline/debian:bookworm      debootstrap --variant=minbase, imported
#   localhost/driftwood-offline/node:20-bookworm     + this machine's Node 20, npm and Node headers
#   localhost/driftwood-offline/python:3.11-bookworm + Debian's Python 3.11 and venv
#   localhost/driftwood-offline/services:bookworm    PostgreSQL, Redis, Prometheus, Alertmanager,
#                                                    nginx (docker-compose.offline.yml); Debian has no statsd exporter
#   localhost/driftwood-offline/s3:moto              an S3 server (moto) in place of MinIO
# The Debian root is made once and kept; the others are rebuilt from their layer cache on every call
# (seconds when nothing changed), so a changed Containerfile takes effect. The registry settings and CA that builds need on this machine go into
# the stand-ins only, never into the product images. Talks to the engine at DOCKER_HOST.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX=localhost/driftwood-offline
DEBIAN_MIRROR="${DRIFTWOOD_DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

say() { echo "  $*" >&2; }
# `docker build` quietly: its output only when it fails (the legacy builder's notice is noise here).
build() {
  local log
  log=$(mktemp)
  docker build -q "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
}
have() { docker image inspect "$1" >/dev/null 2>&1; }
# The Dockerfiles' default base, read from their ARG line, so there is one place that pins it.
pinned() { sed -n "s/^ARG $1=//p" "$ROOT/docker/$2.Dockerfile" | head -1; }
pullable() { have "$1" || timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

debian_base() {
  have "$PREFIX/debian:bookworm" && return 0
  command -v debootstrap >/dev/null || { sudo_cmd apt-get update -qq; sudo_cmd apt-get install -y -qq debootstrap >/dev/null; }
  local rootfs
  rootfs=$(mktemp -d)
  say "debootstrap bookworm from $DEBIAN_MIRROR (about a minute)"
  sudo_cmd debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
  local security="${DEBIAN_MIRROR%/debian}/debian-security"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" "$security" | sudo_cmd tee "$rootfs/etc/apt/sources.list" >/dev/null
  # This machine's apt settings (e.g. snapshot mirrors without Valid-Until) carry over to the stand-in.
  sudo_cmd cp /etc/apt/apt.conf.d/99artifact-registry "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
  sudo_cmd rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc "$rootfs"/usr/share/man
  sudo_cmd tar -C "$rootfs" -c . | docker import - "$PREFIX/debian:bookworm" >/dev/null
  sudo_cmd rm -rf "$rootfs" "$rootfs.log"
}

# The context of a stand-in: the CA bundle and the registry settings of this machine.
context() {
  local dir
  dir=$(mktemp -d)
  cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$dir/ca-certificates.crt"
  printf 'registry=%s\nfund=false\naudit=false\nupdate-notifier=false\n' "$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)" >"$dir/npmrc"
  local index
  index=$(pip config get global.index-url 2>/dev/null || true)
  { echo "[global]"; echo "cert = /usr/local/share/driftwood-offline/ca-bundle.crt"; [ -n "$index" ] && echo "index-url = $index"; } >"$dir/pip.conf"
  echo "$dir"
}

node_base() {
  local tag="$PREFIX/node:20-bookworm"
  local node prefix dir
  node=$(readlink -f "$(command -v node)")
  prefix=$(dirname "$(dirname "$node")")
  [ -f "$prefix/include/node/node.h" ] || { say "Node headers not found under $prefix/include/node"; exit 1; }
  dir=$(context)
  mkdir -p "$dir/node/bin" "$dir/node/lib/node_modules" "$dir/node/include"
  cp "$node" "$dir/node/bin/node"
  cp -r "$(npm root -g)/npm" "$dir/node/lib/node_modules/npm"
  cp -r "$prefix/include/node" "$dir/node/include/node"
  have "$tag" || say "building $tag (Node $(node --version) from this machine)"
  build -f "$HERE/node.Containerfile" -t "$tag" "$dir"
  rm -rf "$dir"
  echo "$tag"
}

python_base() {
  local tag="$PREFIX/python:3.11-bookworm"
  local dir
  dir=$(context)
  have "$tag" || say "building $tag (Debian's Python 3.11)"
  build -f "$HERE/python.Containerfile" -t "$tag" "$dir"
  rm -rf "$dir"
  echo "$tag"
}

service_images() {
  have "$PREFIX/services:bookworm" || say "building $PREFIX/services:bookworm (PostgreSQL, Redis, Prometheus, Alertmanager, nginx)"
  build -f "$HERE/services.Containerfile" -t "$PREFIX/services:bookworm" "$HERE"
  have "$PREFIX/s3:moto" || say "building $PREFIX/s3:moto (S3 server)"
  build -f "$HERE/s3.Containerfile" -t "$PREFIX/s3:moto" "$HERE"
}

node_pin=$(pinned NODE_IMAGE serving)
python_pin=$(pinned PYTHON_IMAGE mlflow)
if pullable "$node_pin" && pullable "$python_pin"; then
  echo "NODE_IMAGE=$node_pin"
  echo "PYTHON_IMAGE=$python_pin"
  exit 0
fi
say "the pinned base images cannot be pulled: using local stand-ins built from Debian"
debian_base
node_image=$(node_base)
python_image=$(python_base)
[ "${1:-}" = "--bases-only" ] || service_images
echo "NODE_IMAGE=$node_image"
echo "PYTHON_IMAGE=$python_image"
