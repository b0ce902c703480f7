#!/usr/bin/env bash
# Test-only tools that the suite calls as programs: a Docker Compose client, so that a test can check
# docker-compose.yml with `config` (the client parses the file without a Docker engine).
set -euo pipefail
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "tools: no Docker Compose client and no apt-get to install one" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "tools: no Docker Compose client; as root run: apt-get install docker-compose" >&2; exit 1; }
echo "tools: installing Debian's docker-compose with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq docker-compose >/dev/null
