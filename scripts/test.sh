#!/usr/bin/env bash
# Runs the linters, then the test suite, in the project's .venv (run scripts/setup.sh first; `make test` does both).
set -euo pipefail
cd "$(dirname "$0")/.."
# ruff and mypy take their settings from pyproject.toml; either one failing fails the run
.venv/bin/ruff check daemon plugins
.venv/bin/mypy
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || {
    echo "test: no Redis on 127.0.0.1:6379; starting one" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    sleep 0.5
}
exec .venv/bin/python -m pytest "$@"
