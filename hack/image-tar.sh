#!/usr/bin/env bash
# Saves an image to a tar file named by its image ID, once: a warm call is one `docker image
# inspect`. For loading images into a container runtime without a registry, e.g.
#   ctr -n k8s.io images import "$(hack/image-tar.sh tflite-converter:ci | tail -1)"
#
#   image-tar.sh IMAGE [DIR]   last stdout line: the tar's path
#
# DIR defaults to ${TFLITE_OPERATOR_CACHE:-~/.cache/tflite-operator}/image-tars. The file is
# <repository>_<tag>-<id12>.tar, written to a temporary name and renamed, so a reader never
# sees half a tar; older tars of the same repository:tag are removed (2.6 GB each for the
# converter).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${1:?usage: image-tar.sh IMAGE [DIR]}"
dir="${2:-${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}/image-tars}"
log() { echo "image-tar: $*" >&2; }

docker="$(bash "$here/docker-engine.sh" --print-client | tail -1)"
id="$("$docker" image inspect --format '{{.Id}}' "$image" 2> /dev/null)" || {
  log "no image $image: build it first (make images)"
  exit 1
}
id="${id#sha256:}"
stem="$(printf '%s' "$image" | tr '/:' '__')"
tar="$dir/$stem-${id:0:12}.tar"
if [[ -s "$tar" ]]; then
  echo "$tar"
  exit 0
fi
mkdir -p "$dir"
log "saving $image (${id:0:12}) to $tar"
# Per process: two test sessions may save the same image at once.
"$docker" save -o "$tar.part$$" "$image"
mv "$tar.part$$" "$tar"
find "$dir" -maxdepth 1 -name "$stem-*.tar" ! -name "${tar##*/}" -delete
echo "$tar"
