#!/usr/bin/env bash
# Idempotent setup from a clone: Node packages, .venv with torch (the libtorch the addon links; with
# HDB_ORACLE=1 also the Python test oracle), the TypeScript build and the native addon. Each step runs only when
# its inputs changed, so a second run takes seconds. (An npm-installed package needs none of this: its install
# script builds the addon, `hdb build-engine`.)
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

# 2. libtorch for the addon: torch 2.13.0 in .venv (the CPU wheel on this machine's disk), all the main job needs.
# 3. The Python oracle (pinned diffusers, transformers, safetensors, numpy, peft) for the tests and benchmarks
#    only: with HDB_ORACLE=1 (scripts/test.sh and `npm run bench:engine` set it).
if [ "${HDB_SKIP_VENV:-0}" != "1" ]; then
  # An oracle install already holds the pinned torch.
  if [ ! -x .venv/bin/python ] || { [ "$(stamp scripts/torch-requirements.txt)" != "$(cat .venv/.hdb-torch-stamp 2>/dev/null)" ] &&
       [ "$(stamp scripts/oracle-requirements.txt)" != "$(cat .venv/.hdb-stamp 2>/dev/null)" ]; }; then
    echo "setup: creating .venv (torch==2.13.0, the libtorch the addon links)" >&2
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/torch-requirements.txt
    stamp scripts/torch-requirements.txt > .venv/.hdb-torch-stamp
  fi
  if [ "${HDB_ORACLE:-0}" = "1" ] && [ "$(stamp scripts/oracle-requirements.txt)" != "$(cat .venv/.hdb-stamp 2>/dev/null)" ]; then
    echo "setup: installing the Python oracle into .venv (diffusers, transformers, safetensors, numpy, peft)" >&2
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/oracle-requirements.txt
    stamp scripts/oracle-requirements.txt > .venv/.hdb-stamp
  fi
fi

# 3b. The service tests' programs (hdb serve, test/server/): Debian's Chromium (the page in a real browser) and
#     redis-server (the BullMQ scale-out), for the tests only (HDB_ORACLE=1); installed when missing and apt-get can.
if [ "${HDB_ORACLE:-0}" = "1" ] && { ! command -v chromium >/dev/null || ! command -v redis-server >/dev/null; } &&
   [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "setup: installing chromium and redis-server (Debian packages) for the service tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null
fi

# 4. TypeScript (incremental: a no-op build takes about a second)
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo

# 5. Native addon (rebuilt only when native/engine.cc or the libtorch found changed)
node dist/src/cli/hdb.js build-engine
