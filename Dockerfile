# syntax=docker/dockerfile:1
# The entsync image: one image for every component (worker, bridge, audit consumer, jobs); the
# command picks the component (`entsync worker`, `entsync bridge serve`, ...).
# Two stages: the build stage compiles and installs into a virtualenv; the final stage copies
# that virtualenv (and python-ldap's shared libraries) only, with no compiler, package manager
# run or source tree, and runs as an unprivileged user whose uid the Helm chart's
# podSecurityContext uses (10001).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# libldap2-dev and libsasl2-dev: python-ldap (the directory writer) is built against them
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libldap2-dev libsasl2-dev \
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
# python-ldap's shared libraries (libldap, liblber, libsasl2) for the final stage; the TLS
# library they use (GnuTLS) is in the base image already (apt's)
RUN mkdir /opt/entsync-libs \
 && cp -L $(ldd /opt/entsync/lib/python3*/site-packages/_ldap*.so \
      | awk '/lib(ldap|lber|sasl2)[-.]/ {print $3}') /opt/entsync-libs/

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /opt/entsync-libs/ /usr/local/lib/
RUN ldconfig \
 && groupadd --system --gid 10001 entsync \
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
