#!/usr/bin/env bash
# Idempotent setup: Node packages, the Python oracle environment (.venv), the TypeScript build and the
# native addon. Each step runs only when its inputs changed, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

# 1. Node packages
if [ ! -d node_modules ] || [ "$(stamp package-lock.json)" != "$(cat node_modules/.hdb-stamp 2>/dev/null)" ]; then
  echo "setup: installing Node packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  stamp package-lock.json > node_modules/.hdb-stamp
fi

# 2. Python oracle: torch 2.13.0 (the CPU wheel on this machine's disk) + pinned diffusers/transformers.
#    It also provides the libtorch the addon links against unless LIBTORCH is set.
if [ "${HDB_SKIP_VENV:-0}" != "1" ]; then
  if [ ! -x .venv/bin/python ] || [ "$(stamp scripts/oracle-requirements.txt)" != "$(cat .venv/.hdb-stamp 2>/dev/null)" ]; then
    echo "setup: creating .venv (torch==2.13.0, diffusers, transformers, safetensors, numpy)" >&2
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/oracle-requirements.txt
    stamp scripts/oracle-requirements.txt > .venv/.hdb-stamp
  fi
fi

# 3. TypeScript (incremental: a no-op build takes about a second)
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo

# 4. Native addon (rebuilt only when native/engine.cc or the libtorch found changed)
node dist/src/engine/native/build.js
