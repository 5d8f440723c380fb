#!/usr/bin/env bash
# Build the annpal image (containers/Dockerfile) with podman, or docker when podman is missing.
#
# Usage: scripts/build-image.sh [--local-base] [--base IMAGE] [--archive FILE] [--prune] [--print-tag]
#   --local-base    build FROM a Debian bookworm base made here with mmdebstrap (localhost/annpal-base:bookworm,
#                   made once, ~1 min) instead of pulling python:3.11-slim-bookworm: for machines that reach
#                   the Debian and PyPI mirrors but no image registry
#   --base IMAGE    build FROM IMAGE (any Debian-like image with Python 3.11 and its venv module)
#   --archive FILE  also write the image as a docker-archive tarball, which Apptainer turns into a SIF:
#                   apptainer build annpal.sif docker-archive://FILE   (containers/README.md)
#   --prune         remove this machine's other annpal:<version>-* images (older code), then dangling ones
#   --print-tag     print the image name and exit
# Env: ANNPAL_ENGINE (podman|docker) to choose; PIP_CACHE_DIR (default ~/.cache/pip): podman mounts it into
#      the build so the wheels `make setup` downloaded are not fetched again (the image still installs
#      exactly requirements.lock; the cache is never part of a layer).
#
# The tag is annpal:<version>-<hash>, the hash over every file the Dockerfile copies that decides what the
# image does (the Dockerfile, requirements.lock, pyproject.toml, src/, bin/). nextflow.config computes the
# same name for -profile docker/podman, so the pipeline never runs an image made from other code, and an
# image that exists already is not rebuilt. When only the code changed, the engine's layer cache reuses the
# locked environment and rebuilds the package layers only (seconds).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
base_image=
local_base=
archive=
prune=
print_tag=
while [[ $# -gt 0 ]]; do
  case $1 in
    --local-base) local_base=1 ;;
    --base) base_image=$2; shift ;;
    --archive) archive=$(realpath -m "$2"); shift ;;
    --prune) prune=1 ;;
    --print-tag) print_tag=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# The same file list and hash as annpalImageTag() in nextflow.config: sha256sum lines of each file,
# sorted by path, hashed again. Byte code, dot files and egg-info are not inputs (.dockerignore drops them).
image_inputs() {
  { printf '%s\n' containers/Dockerfile requirements.lock pyproject.toml
    find src bin -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '.*' ! -path '*.egg-info/*'
  } | LC_ALL=C sort | tr '\n' '\0' | xargs -0 sha256sum
}
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' pyproject.toml | head -n1)
hash=$(image_inputs | sha256sum | cut -c1-12)
image="annpal:${version}-${hash}"
if [[ -n $print_tag ]]; then echo "$image"; exit 0; fi

engine=${ANNPAL_ENGINE:-}
if [[ -z $engine ]]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else echo "build-image: neither podman nor a running docker found; install podman (apt-get install podman)" >&2; exit 1
  fi
fi

# One build at a time on this machine: two runs of the same tag would race for the name.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/annpal-build-image.$(id -u).lock"
  flock 9
fi

if [[ -n $local_base ]]; then
  base_image=localhost/annpal-base:bookworm
  if ! $engine image inspect "$base_image" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "build-image: --local-base needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "build-image: making $base_image with mmdebstrap" >&2
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,procps bookworm "$tmp/base.tar"
    $engine import --change 'CMD ["bash"]' "$tmp/base.tar" "$base_image" >/dev/null
    rm -rf "$tmp"
  fi
fi

if $engine image inspect "$image" >/dev/null 2>&1; then
  echo "build-image: $image exists (same lock and code); not rebuilt" >&2
else
  python_minor=$(sed -n 's/.*Python \([0-9]*\.[0-9]*\).*/\1/p' requirements.lock | head -n1)
  args=(build -f containers/Dockerfile -t "$image" --network host
        --build-arg "PYTHON_MINOR=$python_minor" --build-arg "ANNPAL_IMAGE=$image")
  [[ -n $base_image ]] && args+=(--build-arg "BASE_IMAGE=$base_image")
  pip_cache=${PIP_CACHE_DIR:-$HOME/.cache/pip}
  if [[ $engine == podman ]]; then
    args+=(--ignorefile containers/Dockerfile.dockerignore)
    if mkdir -p "$pip_cache" 2>/dev/null; then
      args+=(-v "$pip_cache:/root/.cache/pip" --build-arg "PIP_CACHE_OPTION=--cache-dir=/root/.cache/pip")
    fi
    # a TLS-intercepting proxy's CA bundle, as the host's pip uses it
    pip_cert=${PIP_CERT:-$(pip3 config get global.cert 2>/dev/null || true)}
    if [[ -n $pip_cert && -f $pip_cert ]]; then
      args+=(-v "$pip_cert:/root/.cache/annpal-build-ca.crt:ro" --build-arg "PIP_CERT=/root/.cache/annpal-build-ca.crt")
    fi
  fi
  start=$SECONDS
  echo "build-image: $engine ${args[*]} ." >&2
  $engine "${args[@]}" .
  echo "build-image: built $image in $((SECONDS - start)) s" >&2
fi

if [[ -n $prune ]]; then
  $engine images --format '{{.Repository}}:{{.Tag}}' \
    | { grep -E "(^|/)annpal:${version}-[0-9a-f]{12}$" || true; } \
    | while read -r old; do
        [[ ${old##*/} == "$image" ]] || $engine rmi "$old" >/dev/null 2>&1 || echo "build-image: $old in use; kept" >&2
      done
  $engine image prune -f >/dev/null
fi

if [[ -n $archive ]]; then
  mkdir -p "$(dirname "$archive")"
  rm -f "$archive.part"
  if [[ $engine == podman ]]; then
    podman save --format docker-archive -o "$archive.part" "$image"
  else
    docker save -o "$archive.part" "$image"
  fi
  mv "$archive.part" "$archive"
  echo "build-image: wrote $archive ($(du -h "$archive" | cut -f1)); apptainer build annpal.sif docker-archive://$archive" >&2
fi
echo "$image"
