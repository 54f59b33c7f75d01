# syntax=docker/dockerfile:1
# The platform image: `vip worker` (Faust agents) and `vip api` (FastAPI query service).
# Build context: the repository root (compose sets it to ".."); app.Dockerfile.dockerignore
# limits what is sent to the project's own files.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the project and its dependencies into a virtual environment ---------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for dependencies that ship no wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY vip ./vip
COPY streams ./streams
COPY agents ./agents
COPY query_service ./query_service

RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && pip install . \
    && vip --help > /dev/null

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="vip" \
      org.opencontainers.image.description="Video Intelligence Platform: stage agents and query API" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 vip \
    && useradd --system --uid 10001 --gid vip --home-dir /home/vip --create-home \
        --shell /usr/sbin/nologin vip \
    && mkdir -p /var/lib/vip \
    && chown -R vip:vip /var/lib/vip

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIP_STATE_DIR=/var/lib/vip \
    VIP_CACHE_DIR=/home/vip/.cache/vip

# The state volume is the working directory, so anything written relative to it persists.
WORKDIR /var/lib/vip
USER vip

EXPOSE 8080
ENTRYPOINT ["vip"]
CMD ["api"]
