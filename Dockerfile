# tau-ops gateway image: builds the package, runs as a non-root user, serves
# GET /gateway/status, /deployment/status, /transport/health and /metrics on
# port 8080 (see docs/guides/gateway.md). No provider secrets are needed.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tau_ops ./tau_ops
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/tau tau \
    && mkdir -p /data/deployment && chown -R tau:tau /data
# Shipped fixtures, so an operator can record a first cycle from inside the machine
# (fixture paths are relative to the repository root, hence WORKDIR /app).
WORKDIR /app
COPY testdata ./testdata
ENV TAU_TRANSPORT_MODE=gateway \
    TAU_GATEWAY_OPENRESPONSES_BIND=0.0.0.0:8080 \
    TAU_DEPLOYMENT_STATE_DIR=/data/deployment
USER tau
EXPOSE 8080
# SIGTERM (what Fly sends on stop) shuts uvicorn down gracefully with status 0.
STOPSIGNAL SIGTERM
CMD ["tau-ops", "gateway", "serve"]
