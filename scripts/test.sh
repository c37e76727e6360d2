#!/usr/bin/env bash
# The whole test suite: setup (idempotent), lint, typecheck (the build), oracle fixtures, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx eslint . --max-warnings=0
.venv/bin/python test/oracle/generate.py
# One file at a time keeps peak memory low on a 2-core machine; the runner prints "# pass N" / "# fail N".
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=test-results.tap \
  $(find dist/test -name '*.test.js' | sort) "$@"
