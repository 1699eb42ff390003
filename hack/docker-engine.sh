#!/usr/bin/env bash
# Makes sure a Docker engine answers, installing and starting it if needed.
#
#   docker-engine.sh                 install (apt, as root) and start dockerd if needed;
#                                    last stdout line: the docker client to use
#   docker-engine.sh --print-client  locate only: print the client if an engine answers,
#                                    exit 1 (reason on stderr) if not; never installs or starts
#
# The client is Debian's /usr/bin/docker (from docker.io) unless DOCKER names one: a newer
# client earlier on PATH (/usr/local/bin/docker on some machines) refuses DOCKER_BUILDKIT=1
# without its buildx plugin, while the 20.10 client drives BuildKit itself.
# dockerd runs detached (it outlives this script, like a service would), logging to
# ${TFLITE_OPERATOR_CACHE:-~/.cache/tflite-operator}/dockerd.log; DOCKERD_WAIT (seconds,
# default 60) bounds the wait for its socket. A running engine costs one `docker info`.
set -euo pipefail

mode="ensure"
case "${1:-}" in
  "") ;;
  --print-client | --locate) mode="locate" ;;
  -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "docker-engine.sh: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

log() { echo "docker-engine: $*" >&2; }
cache="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}"
wait_s="${DOCKERD_WAIT:-60}"

client() {
  if [[ -n "${DOCKER:-}" ]]; then
    echo "$DOCKER"
  elif [[ -x /usr/bin/docker ]]; then
    echo /usr/bin/docker
  else
    command -v docker || true
  fi
}

answers() {
  local c
  c="$(client)"
  [[ -n "$c" ]] && timeout 10 "$c" info > /dev/null 2>&1
}

if answers; then
  client
  exit 0
fi
if [[ "$mode" == "locate" ]]; then
  if [[ -z "$(client)" ]]; then
    log "no docker client: run hack/docker-engine.sh (installs Debian's docker.io, as root)"
  else
    log "no Docker engine answers '$(client) info': run hack/docker-engine.sh to start one"
  fi
  exit 1
fi

if ! command -v dockerd > /dev/null || [[ ! -x /usr/bin/docker && -z "${DOCKER:-}" ]]; then
  if [[ "$(id -u)" != 0 ]]; then
    log "dockerd is not installed and this is not root: install Debian's docker.io (sudo apt-get install docker.io) or start an engine"
    exit 1
  fi
  log "installing Debian's docker.io (dockerd, containerd, runc and the 20.10 client)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends docker.io iptables >&2
fi

if [[ "$(id -u)" != 0 ]]; then
  log "dockerd is installed but not answering, and starting it needs root"
  exit 1
fi
mkdir -p "$cache"
log "starting dockerd (log: $cache/dockerd.log)"
# setsid + nohup: not a child of make or pytest, so their end (or Ctrl-C) leaves it running.
setsid nohup dockerd > "$cache/dockerd.log" 2>&1 < /dev/null &
pid=$!
for _ in $(seq 1 "$wait_s"); do
  if answers; then
    log "dockerd answers (pid $pid)"
    client
    exit 0
  fi
  if ! kill -0 "$pid" 2> /dev/null; then
    # Another dockerd may have won the race for the pid file: that one is as good.
    answers && { client; exit 0; }
    log "dockerd exited; the end of its log:"
    tail -20 "$cache/dockerd.log" >&2
    exit 1
  fi
  sleep 1
done
log "dockerd did not answer within ${wait_s}s (DOCKERD_WAIT); the end of its log:"
tail -20 "$cache/dockerd.log" >&2
exit 1
