#!/usr/bin/env bash
# Validate compose/docker-compose.yml without a Docker engine (compose evaluates it client-side):
#   1. it renders with compose/.env.example;
#   2. it refuses to render when the required secrets are missing;
#   3. the rendered model keeps the security bar: only the API and Grafana publish a port, on
#      loopback; every dependency is awaited healthy (or, for the one-off `init`, to exit 0);
#      every build names a Dockerfile that exists; every bind-mounted file or folder exists;
#      Triton reserves a GPU; Prometheus scrapes services of the model.
#
# Usage: compose/check.sh            (exit 0: valid; 1: invalid; 127: no compose v2 CLI)
# COMPOSE="docker-compose" compose/check.sh   to choose the CLI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
file="$here/docker-compose.yml"
example="$here/.env.example"

# The variables docker-compose.yml reads: cleared so the caller's shell cannot mask a problem.
vars=(NEO4J_PASSWORD MINIO_ROOT_USER MINIO_ROOT_PASSWORD VIP_API_KEY API_BIND API_PUBLISH_PORT
      KAFKA_HEAP NEO4J_HEAP NEO4J_PAGECACHE TRITON_IMAGE KAFKA_CLUSTER_ID GRAFANA_ADMIN_PASSWORD
      GRAFANA_PUBLISH_PORT PROMETHEUS_RETENTION)
unset "${vars[@]}"

if [[ -n "${COMPOSE:-}" ]]; then
    read -r -a compose <<< "$COMPOSE"
elif docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose > /dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "check.sh: no Docker Compose CLI (docker compose plugin or docker-compose v2)" >&2
    exit 127
fi

version="$("${compose[@]}" version --short 2>/dev/null || true)"
version="${version#v}"
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
# env_file entries with `required: false` need Compose 2.24 or later.
if ! [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || (( major < 2 || (major == 2 && minor < 24) )); then
    echo "check.sh: '${compose[*]}' is version '${version:-unknown}'; Compose >= 2.24 is needed" >&2
    exit 127
fi
echo "check.sh: using ${compose[*]} $version"

# The CLI must report failure through its exit status (some wrappers swallow it).
if "${compose[@]}" -f "$here/does-not-exist.yml" config > /dev/null 2>&1; then
    echo "check.sh: '${compose[*]}' exits 0 on a missing file; it cannot be trusted to validate" >&2
    exit 127
fi

fail=0

# 1. Renders with the example variables.
rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
if "${compose[@]}" -f "$file" --env-file "$example" config --quiet \
    && "${compose[@]}" -f "$file" --env-file "$example" config --format json > "$rendered"; then
    echo "ok   config renders with .env.example"
else
    echo "FAIL config does not render with .env.example" >&2
    exit 1
fi

# 2. Each required secret, when missing, stops the render.
for secret in NEO4J_PASSWORD MINIO_ROOT_USER MINIO_ROOT_PASSWORD VIP_API_KEY GRAFANA_ADMIN_PASSWORD; do
    stripped="$(mktemp)"
    grep -v "^${secret}=" "$example" > "$stripped"
    if "${compose[@]}" -f "$file" --env-file "$stripped" config --quiet > /dev/null 2>&1; then
        echo "FAIL config renders without $secret" >&2
        fail=1
    else
        echo "ok   config refuses to render without $secret"
    fi
    rm -f "$stripped"
done

# 3. Policy on the rendered model.
if python3 - "$rendered" "$here/prometheus/prometheus.yml" <<'EOF'
import json
import os
import re
import sys

model = json.load(open(sys.argv[1]))
services = model["services"]
problems = []
PUBLISHED = {"api", "grafana"}

for name, service in services.items():
    for port in service.get("ports", []):
        if name not in PUBLISHED:
            problems.append(f"{name} publishes port {port.get('target')}; only {sorted(PUBLISHED)} may")
        elif port.get("host_ip") != "127.0.0.1":
            problems.append(f"{name} publishes on {port.get('host_ip') or 'all interfaces'}, not 127.0.0.1")
    for volume in service.get("volumes", []):
        if volume.get("type") == "bind" and not os.path.exists(volume["source"]):
            problems.append(f"{name} mounts missing {volume['source']}")
    for dependency, rule in (service.get("depends_on") or {}).items():
        if dependency not in services:
            problems.append(f"{name} depends on unknown service {dependency}")
        elif rule.get("condition") == "service_completed_successfully":
            if services[dependency].get("restart", "no") != "no":
                problems.append(f"{name} waits for {dependency} to exit, but it restarts")
        elif rule.get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for {dependency} to be healthy")
        elif "healthcheck" not in services[dependency]:
            problems.append(f"{name} waits for {dependency}, which has no healthcheck")
    build = service.get("build")
    if build:
        dockerfile = os.path.join(build["context"], build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            problems.append(f"{name} builds from missing {dockerfile}")

api = services.get("api", {})
if not api.get("ports"):
    problems.append("api publishes no port")
for name in ("worker", "api"):
    deps = set(services.get(name, {}).get("depends_on") or {})
    missing = {"kafka", "neo4j", "milvus", "triton", "init"} - deps
    if missing:
        problems.append(f"{name} does not wait for {sorted(missing)}")

gpu = services.get("triton", {}).get("deploy", {}).get("resources", {}).get("reservations", {})
if not any("gpu" in device.get("capabilities", []) for device in gpu.get("devices", [])):
    problems.append("triton reserves no GPU")

# Every Prometheus target is a service of the model (host:port, the port being the service's).
with open(sys.argv[2]) as config:
    targets = re.findall(r'"([a-z0-9_-]+):(\d+)"', config.read())
for host, port in targets:
    if host != "localhost" and host not in services:
        problems.append(f"prometheus scrapes {host}:{port}, which is no service")
if not {"api", "worker"} <= {host for host, _ in targets}:
    problems.append("prometheus does not scrape both the api and the worker")

for problem in problems:
    print(f"FAIL {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
then
    echo "ok   ports, health dependencies, Dockerfiles, mounts, GPU and scrape targets"
else
    fail=1
fi

exit "$fail"
