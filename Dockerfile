# syntax=docker/dockerfile:1
# The entsync image: one image for every component (worker, bridge, audit consumer, jobs); the
# command picks the component (`entsync worker`, `entsync bridge serve`, ...).
# Two stages: the build stage compiles and installs into a virtualenv; the final stage copies
# that virtualenv only, with no compiler, package manager run or source tree, and runs as an
# unprivileged user whose uid the Helm chart's podSecurityContext uses (10001).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/entsync
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entsync ./entsync
COPY sync ./sync
COPY connectors ./connectors
COPY schemas ./schemas
# a regular (not editable) install: the package data (LDAP schemas, templates) is copied in
RUN /opt/entsync/bin/pip install . \
 && /opt/entsync/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 entsync \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/entsync --no-create-home \
      --shell /usr/sbin/nologin entsync \
 && mkdir -p /var/lib/entsync \
 && chown 10001:10001 /var/lib/entsync
COPY --from=build /opt/entsync /opt/entsync
ENV PATH=/opt/entsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENTSYNC_STATE_DIR=/var/lib/entsync \
    ENTSYNC_LOG_FORMAT=json
WORKDIR /var/lib/entsync
# numeric, so that Kubernetes can check runAsNonRoot
USER 10001:10001
EXPOSE 8400 9464
ENTRYPOINT ["entsync"]
CMD ["--help"]
