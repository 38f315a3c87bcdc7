#!/usr/bin/env bash
# The core install alone (no extras, no dev tools) runs the demo pipeline: `pip install .` into a
# fresh virtual environment (a built wheel, so the bundled warehouse/ and schemas/ are what the
# package carries), then `globmed run` on configs/demo.yaml in an empty folder. It fails when the
# core imports something only an extra or the dev tools install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${CORE_VENV:-.venv-core}
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
started=$(date +%s)
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet .
installed=$(date +%s)
work=$(mktemp -d)
# The core venv goes too (set KEEP_CORE_VENV=1 to keep it): `make test` installs the dev
# environment (~3 GB) next, and a CI machine's disk may be small.
trap 'rm -rf "$work"; [ -n "${KEEP_CORE_VENV:-}" ] || rm -rf "$VENV"' EXIT
(cd "$work" && PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_HOME="$work/prefect" \
    "$OLDPWD/$VENV/bin/globmed" run --config "$OLDPWD/configs/demo.yaml" --warehouse "$work/demo.duckdb")
(cd "$work" && "$OLDPWD/$VENV/bin/globmed" versions list --warehouse "$work/demo.duckdb")
done_at=$(date +%s)
echo "core install: $((installed - started)) s; demo pipeline through it: $((done_at - installed)) s"
