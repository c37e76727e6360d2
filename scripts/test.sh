#!/usr/bin/env bash
# The whole test suite: setup (idempotent), lint, typecheck (the build), layers, oracle fixtures, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# The oracle's Python packages (diffusers, transformers, …) are installed for the tests alone.
HDB_ORACLE=1 bash scripts/setup.sh
# Fixed thread counts in libtorch/MKL (no dynamic adjustment under load), so the oracle and the tests sum
# floats in the same order.
export MKL_DYNAMIC=FALSE OMP_DYNAMIC=FALSE
# libtorch's default thread count, not the engine's free-core sizing (src/engine/native/threads.ts): the oracle's
# fixtures are made at the default count, and a float sum's order follows the thread count.
export HDB_AUTO_THREADS=0
npx eslint . --max-warnings=0
# The layers (.dependency-cruiser.js, docs/ARCHITECTURE.md): an import the wrong way fails the suite here.
npx depcruise src --config .dependency-cruiser.js
.venv/bin/python test/oracle/generate.py
# One test file at a time keeps peak memory low on a 2-core machine. The spec reporter shows each test;
# the TAP copy gives the closing "N passed, N failed" line.
status=0
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=dist/test-results.tap \
  $(find dist/test -name '*.test.js' | sort) "$@" || status=$?
passed=$(grep -E '^# pass ' dist/test-results.tap | awk '{print $3}')
failed=$(grep -E '^# fail ' dist/test-results.tap | awk '{print $3}')
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit $status
