# syntax=docker/dockerfile:1
# crmsync: a background worker next to the CRM. Build: docker build -t crmsync .
# Stage 1 builds wheels for crmsync and every dependency; stage 2 installs them into a
# slim image that runs as a non-root user with no compiler and no secrets in it.

FROM python:3.11-slim AS build
WORKDIR /src
# The evaluation hot path is compiled by mypyc (setup.py, CRMSYNC_COMPILE=1): the compiler
# stays in this stage; the runtime image gets the built wheel only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m pip install --no-cache-dir --upgrade pip wheel "setuptools>=77" "mypy>=1.10"
COPY pyproject.toml setup.py README.md ./
COPY src ./src
# Wheels for every runtime dependency, installed here too: mypyc type-checks the compiled modules
# with pyproject.toml's mypy settings, whose pydantic.mypy plugin imports pydantic and whose
# modules import msgspec. (The pure-Python crmsync wheel this builds on the way is dropped.)
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels . \
 && rm /wheels/crmsync-*.whl \
 && python -m pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl
RUN CRMSYNC_COMPILE=1 python -m pip wheel --no-cache-dir --no-build-isolation --no-deps \
      --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="crmsync" \
      org.opencontainers.image.description="Checks CRM complaints against published charters"
RUN groupadd --system --gid 10001 crmsync \
 && useradd --system --uid 10001 --gid crmsync --home-dir /data --shell /usr/sbin/nologin crmsync \
 && mkdir -p /data /app \
 && chown crmsync:crmsync /data
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --no-index --find-links=/tmp/wheels crmsync \
 && rm -rf /tmp/wheels
WORKDIR /app
COPY mappings ./mappings
ENV PYTHONUNBUFFERED=1 \
    CRMSYNC_DATA_DIR=/data \
    CRMSYNC_HTTP_PORT=8080 \
    CRMSYNC_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER crmsync
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["crmsync", "healthcheck"]
ENTRYPOINT ["crmsync"]
CMD ["run"]
