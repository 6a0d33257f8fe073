# syntax=docker/dockerfile:1
# RouteIQ service image: multi-stage, non-root, models baked in and verified, no network at run time.
#
#   docker build -t routeiq .
#   docker run --rm -p 8400:8400 --read-only --tmpfs /tmp routeiq
#
# Behind a TLS-intercepting proxy or a private index, pass pip's settings as build args, e.g.
#   --build-arg PIP_INDEX_URL=https://pypi.example/simple --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# (they exist only in the builder stage and never reach the runtime image).

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# builder: a virtualenv with the routeiq wheel and its dependencies (all ship manylinux wheels,
# so no compiler is needed here either).
FROM ${BASE_IMAGE} AS builder

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
WORKDIR /src

# Dependencies first, from the lock alone (exact versions, every file's sha256: nothing newer or
# altered than what `make lock` resolved gets in); a code change does not reinstall numpy & co.
COPY requirements/service.lock /tmp/service.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps --requirement /tmp/service.lock

# models/ is package data of the wheel (`routeiq.models`): the venv carries the one copy.
COPY pyproject.toml README.md LICENSE ./
COPY service/ service/
COPY models/ models/
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip uninstall --yes setuptools pip \
    # pip/setuptools and bundled test suites are dead weight at run time.
    && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -path '*/site-packages/*' -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib

# ---------------------------------------------------------------------------------------------
# runtime: the base image + the venv (models included). Everything is owned by root and read-only for the
# service user, so the root filesystem can be mounted read-only (writes go to /tmp only).
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="routeiq" \
      org.opencontainers.image.description="Routing-decision sidecar for LLM gateways" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 routeiq \
    && useradd --system --uid 10001 --gid routeiq --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin routeiq

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROUTEIQ_HOST=0.0.0.0 \
    ROUTEIQ_PORT=8400 \
    ROUTEIQ_WORKERS=1

COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh docker/healthcheck.py /app/docker/
WORKDIR /app
# The bundled models are the default (no ROUTEIQ_MODELS_PATH needed); /app/models stays as a
# read-only view of them for anyone who looks there. ROUTEIQ_MODELS_PATH still overrides.
RUN ln -s "$(python3 -c 'import routeiq.models, os; print(os.path.dirname(routeiq.models.__file__))')" /app/models

# Fail the build on a missing or altered artifact: hashes, centroids vs prototypes, one decision.
RUN ["routeiq", "verify"]

USER 10001:10001
EXPOSE 8400
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
