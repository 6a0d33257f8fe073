# syntax=docker/dockerfile:1
# The LiteLLM proxy with routeiq-client installed: the `litellm` container of charts/routeiq's
# sidecar mode. Same base image as the service; every dependency from requirements/gateway.lock
# (litellm[proxy] at the version client/pyproject.toml pins, with hashes). Build from the root:
#   docker build -f docker/gateway.Dockerfile -t litellm-routeiq .
#   docker run -v $PWD/examples/litellm/config.yaml:/etc/litellm/config.yaml litellm-routeiq --config /etc/litellm/config.yaml

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY requirements/gateway.lock /tmp/gateway.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps --requirement /tmp/gateway.lock
COPY client/ /src/client/
RUN /opt/venv/bin/pip install --no-deps /src/client \
    && /opt/venv/bin/pip uninstall --yes setuptools pip

FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="litellm-routeiq" \
      org.opencontainers.image.description="LiteLLM proxy with the RouteIQ routing strategy" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 litellm \
    && useradd --system --uid 10001 --gid litellm --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin litellm
# LITELLM_LOCAL_MODEL_COST_MAP: the cost map inside the package; otherwise LiteLLM fetches one at
# start and warns when it cannot (no network is needed to route).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    LITELLM_LOCAL_MODEL_COST_MAP=True
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
EXPOSE 4000
ENTRYPOINT ["litellm"]
CMD ["--port", "4000"]
