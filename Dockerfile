# Two images from one file:
#   docker build --target operator  -t tflite-operator:dev .    # the operator, no TensorFlow
#   docker build --target converter -t tflite-converter:dev .   # converter Jobs: TensorFlow, LiteRT
# (BuildKit: DOCKER_BUILDKIT=1 with a 20.10 client, or buildx; `make images` does both.)
#
# Both run as uid/gid 65532 (the operator's Job builder and the chart assume it) with their
# virtualenv in /opt/venv, read-only for that user. CI builds both with `make images`
# (hack/images.sh) and runs them (tests/images); tests/shipping/test_install.py also runs the
# `RUN` steps of the build-* stages below, as written, in clean virtualenvs, where no Docker
# engine is at hand. Keep those steps plain shell on $VENV and $SRC so that it stays a check
# of this file.
#
# No `# syntax=` line: it makes BuildKit pull a frontend image from a registry; the frontend
# built into BuildKit has everything used here (RUN --mount=type=cache).
#
# The base is pinned to a patch release, in this one line; add its digest where a registry is
# reachable (python:3.11.14-slim-trixie@sha256:...). Python 3.11 matches the interpreter the
# test suite and CI run on. BASE is for machines that cannot pull it: `make images` passes a
# Python 3.11 base built from Debian's packages there (hack/debian-base.sh). Any base with
# python3 (and venv), groupadd/useradd and a PATH will do.
# checkov reads `FROM ${BASE}` as an untagged image; the tag is the pinned default above.
# checkov:skip=CKV_DOCKER_7: base pinned in ARG BASE, test_install.py checks the pin
ARG BASE=python:3.11.14-slim-trixie
FROM ${BASE} AS python-base

# --- build stages: wheels only (--only-binary), so no compiler is needed or installed ----------
FROM python-base AS build-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VENV=/opt/venv \
    SRC=/src
WORKDIR /src
# What the wheel is built from (pyproject.toml names README.md); .dockerignore keeps the rest out.
COPY pyproject.toml README.md ./
COPY operator/ ./operator/

FROM build-base AS build-operator
# The base install: Kopf and the Kubernetes client, no TensorFlow.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv "$VENV" \
    && "$VENV/bin/pip" install --upgrade pip==26.3 \
    && "$VENV/bin/pip" install --only-binary=:all: "$SRC"

FROM build-base AS build-converter
# The [converter] extra: TensorFlow, ai-edge-litert, google-cloud-storage.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv "$VENV" \
    && "$VENV/bin/pip" install --upgrade pip==26.3 \
    && "$VENV/bin/pip" install --only-binary=:all: "${SRC}[converter]"

# --- runtime: the base image, a non-root user, the venv; no build tools ------------------------
FROM python-base AS runtime
# Kubernetes probes (the chart's livenessProbe) check health; a Docker HEALTHCHECK is ignored
# by Kubernetes and would only mislead.
# checkov:skip=CKV_DOCKER_2: Kubernetes liveness probes check health, not HEALTHCHECK
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.source="https://github.com/tflite-operator/tflite-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

FROM runtime AS converter
LABEL org.opencontainers.image.title="tflite-converter" \
      org.opencontainers.image.description="tflite-operator converter Job: SavedModel to TFLite variants"
COPY --from=build-converter /opt/venv /opt/venv
ENTRYPOINT ["tflite-operator"]
CMD ["job"]

# Last, so that a plain `docker build .` gives the small image.
FROM runtime AS operator
LABEL org.opencontainers.image.title="tflite-operator" \
      org.opencontainers.image.description="tflite-operator: the Kubernetes operator (no TensorFlow)"
COPY --from=build-operator /opt/venv /opt/venv
ENTRYPOINT ["tflite-operator"]
CMD ["operator"]
