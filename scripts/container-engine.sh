#!/usr/bin/env bash
# A container engine the stack and its tests can rely on, reached through DOCKER_HOST.
#
#   scripts/container-engine.sh start    # prints DOCKER_HOST=… on its last line
#   scripts/container-engine.sh stop     # stops only what `start` started
#   scripts/container-engine.sh env      # DOCKER_HOST=… of the running engine, or exit 1
#
# A Docker engine that answers (DOCKER_HOST, or the default socket) is used as it is. Otherwise
# Debian's podman + runc is installed and configured, and its Docker-compatible socket started at
# $DRIFTWOOD_PODMAN_SOCKET (default /run/podman/podman.sock). Podman runs healthchecks through
# systemd timers; where there is no systemd, a small loop here runs them, so that compose's
# `condition: service_healthy` works. Idempotent: a second `start` reuses the running service.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${DRIFTWOOD_HOME:-$ROOT/.driftwood}/engine"
SOCKET="${DRIFTWOOD_PODMAN_SOCKET:-/run/podman/podman.sock}"
HEALTH_INTERVAL="${DRIFTWOOD_HEALTH_INTERVAL:-5}"
mkdir -p "$STATE"

say() { echo "  $*" >&2; }

docker_answers() { # $1: a DOCKER_HOST value ("" for the client's default)
  command -v docker >/dev/null || return 1
  DOCKER_HOST="$1" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_podman() {
  local want=()
  command -v podman >/dev/null || want+=(podman uidmap slirp4netns containernetworking-plugins iptables)
  # Containers find each other by service name only with the CNI dnsname plugin.
  [ -x /usr/lib/cni/dnsname ] || want+=(golang-github-containernetworking-plugin-dnsname)
  command -v runc >/dev/null || want+=(runc)
  # The `docker` client the scripts use; podman-docker's is a wrapper of podman itself.
  command -v docker >/dev/null || want+=(podman-docker)
  [ ${#want[@]} -eq 0 ] && return 0
  say "installing ${want[*]} (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd apt-get update -qq
  sudo_cmd apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

# crun (podman's default) fails here on hybrid cgroups, and the default rlimits exceed what a
# process without CAP_SYS_RESOURCE may set: both are settings of the engine, not of the images.
configure_podman() {
  local conf=/etc/containers/containers.conf nofile
  # Containers may not raise a limit above what this process may: take its own hard limit.
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  if ! grep -q "driftwood: engine settings, nofile=$nofile" "$conf" 2>/dev/null; then
    sudo_cmd mkdir -p /etc/containers
    [ -f "$conf" ] && [ ! -f "$conf.before-driftwood" ] && sudo_cmd cp "$conf" "$conf.before-driftwood"
    sudo_cmd tee "$conf" >/dev/null <<CONF
# driftwood: engine settings, nofile=$nofile (scripts/container-engine.sh); the previous file is kept as *.before-driftwood
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
events_logger = "file"
cgroup_manager = "cgroupfs"
CONF
  fi
}

# Podman's healthchecks need systemd timers; without systemd nothing runs them. This loop runs each
# container's check at its own interval (a starting container every few seconds, so that
# `depends_on: service_healthy` is not held back by a long interval).
# A Go duration ("15s", "1m30s", "1h0m0s") or nanoseconds, in whole seconds; 30 when unknown.
seconds() {
  local d=$1 total=0 n
  if [[ $d =~ ^[0-9]+$ ]]; then total=$(( d / 1000000000 ));
  else
    if [[ $d =~ ([0-9]+)h ]]; then n=${BASH_REMATCH[1]}; total=$(( total + n * 3600 )); fi
    if [[ $d =~ ([0-9]+)m([0-9]|$) ]]; then n=${BASH_REMATCH[1]}; total=$(( total + n * 60 )); fi
    if [[ ! $d =~ ms$ ]] && [[ $d =~ ([0-9]+)(\.[0-9]+)?s$ ]]; then n=${BASH_REMATCH[1]}; total=$(( total + n )); fi
  fi
  if [ "$total" -gt 0 ]; then echo "$total"; else echo 30; fi
}

health_loop() {
  declare -A last=() every=()
  local now id state interval
  while true; do
    now=$(date +%s)
    while read -r id state; do
      [ -n "$id" ] || continue
      if [ -z "${every[$id]:-}" ]; then
        every[$id]=$(seconds "$(podman inspect --format '{{.Config.Healthcheck.Interval}}' "$id" 2>/dev/null)")
      fi
      interval=${every[$id]}
      [ "$state" = starting ] && interval=$HEALTH_INTERVAL
      if [ $(( now - ${last[$id]:-0} )) -ge "$interval" ]; then
        last[$id]=$now
        # In parallel: one slow check (Airflow's CLI takes seconds) must not hold the others back.
        timeout 120 podman healthcheck run "$id" >/dev/null 2>&1 &
      fi
    done < <(podman ps --filter health=starting --filter health=healthy --filter health=unhealthy \
               --format '{{.ID}} {{.Status}}' 2>/dev/null | sed -E 's/^([0-9a-f]+) .*\((starting|healthy|unhealthy)\).*/\1 \2/')
    wait
    sleep 2
  done
}

start() {
  if [ -n "${DOCKER_HOST:-}" ] && docker_answers "$DOCKER_HOST"; then
    echo "DOCKER_HOST=$DOCKER_HOST"; return 0
  fi
  if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && docker_answers "unix:///var/run/docker.sock"; then
    echo "DOCKER_HOST=unix:///var/run/docker.sock"; return 0
  fi
  install_podman
  configure_podman
  if ! alive "$STATE/podman.pid" || ! docker_answers "unix://$SOCKET"; then
    say "starting podman's Docker-compatible socket at $SOCKET"
    sudo_cmd mkdir -p "$(dirname "$SOCKET")"
    rm -f "$SOCKET"
    nohup podman system service --time=0 "unix://$SOCKET" >"$STATE/podman.log" 2>&1 &
    echo $! >"$STATE/podman.pid"
    for _ in $(seq 1 100); do docker_answers "unix://$SOCKET" && break; sleep 0.2; done
    docker_answers "unix://$SOCKET" || { say "podman's socket did not answer: $STATE/podman.log"; exit 1; }
  fi
  # Group root may use the socket, as group docker may use Docker's: the stack's Airflow worker
  # (uid 50000, gid 0) starts the step containers through it.
  chmod 660 "$SOCKET"
  if [ ! -d /run/systemd/system ] && ! alive "$STATE/health.pid"; then
    health_loop >/dev/null 2>&1 &
    echo $! >"$STATE/health.pid"
  fi
  echo "DOCKER_HOST=unix://$SOCKET"
}

stop() {
  for name in health podman; do
    if alive "$STATE/$name.pid"; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      say "stopped $name"
    fi
    rm -f "$STATE/$name.pid"
  done
}

env_of_running() {
  if [ -n "${DOCKER_HOST:-}" ] && docker_answers "$DOCKER_HOST"; then echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
  if docker_answers "unix://$SOCKET"; then echo "DOCKER_HOST=unix://$SOCKET"; return 0; fi
  if docker_answers "unix:///var/run/docker.sock"; then echo "DOCKER_HOST=unix:///var/run/docker.sock"; return 0; fi
  return 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) env_of_running ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
