#!/usr/bin/env bash
# Installs (or finds) checkov, hadolint and shellcheck in a venv of their own, cached by the
# hash of requirements.txt in ${TFLITE_OPERATOR_CACHE:-~/.cache/tflite-operator}/linters-<hash>.
#
#   install.sh              install if needed; last stdout line: the venv's bin directory
#   install.sh --print-dir  locate only: print it if installed, exit 1 (reason on stderr)
#
# PYTHON picks the interpreter (default python3). An install takes about a minute; a new
# requirements.txt (or this script) makes a new venv. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="install"
case "${1:-}" in
  "") ;;
  --print-dir | --locate) mode="locate" ;;
  -h | --help)
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "install.sh: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

log() { echo "linters: $*" >&2; }

key="$(cat "$here/requirements.txt" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
cache="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}"
venv="$cache/linters-$key"

usable() {
  [[ -f "$venv/.complete" && -x "$venv/bin/checkov" && -x "$venv/bin/hadolint" && -x "$venv/bin/shellcheck" ]]
}

if usable; then
  echo "$venv/bin"
  exit 0
fi
if [[ "$mode" == "locate" ]]; then
  log "checkov, hadolint and shellcheck are not installed in $venv"
  log "install them with: bash tests/shipping/linters/install.sh (about 1 min with a warm pip cache)"
  exit 1
fi

mkdir -p "$cache"
exec 9> "$cache/.linters-$key.lock"
if command -v flock > /dev/null; then
  flock 9
  if usable; then
    echo "$venv/bin"
    exit 0
  fi
fi
log "installing $(grep -v '^#' "$here/requirements.txt" | xargs) into $venv"
start=$(date +%s)
rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
# Older generations of this venv are dead weight once a new one works.
for old in "$cache"/linters-*; do
  [[ "$old" != "$venv" && -d "$old" ]] && rm -rf "$old"
done
touch "$venv/.complete"
log "installed in $(($(date +%s) - start))s"
echo "$venv/bin"
