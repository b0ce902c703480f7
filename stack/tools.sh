#!/usr/bin/env bash
# Test-only tools that the suite calls as programs: a Docker Compose client, so that a test can check
# docker-compose.yml with `config` (the client parses the file without a Docker engine), and promtool, so that
# tests can check and unit-test the alerting rules in deploy/prometheus/ (Debian's prometheus package has it).
set -euo pipefail
need_compose=1
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  need_compose=0
fi
need_promtool=1
command -v promtool >/dev/null && need_promtool=0
[ "$need_compose$need_promtool" = 00 ] && exit 0
missing=""
[ $need_compose = 1 ] && missing="docker-compose"
[ $need_promtool = 1 ] && missing="${missing:+$missing }prometheus"
command -v apt-get >/dev/null || { echo "tools: $missing missing and no apt-get to install it" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "tools: $missing missing; as root run: apt-get install $missing" >&2; exit 1; }
echo "tools: installing Debian's $missing with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
if [ $need_compose = 1 ]; then
  apt-get install -y -qq docker-compose >/dev/null
fi
if [ $need_promtool = 1 ]; then
  # Only promtool is wanted from it: not the node exporter it recommends, nor the Prometheus server that the
  # package starts as a service where systemd runs (it was not installed before, so this stops only our own).
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
