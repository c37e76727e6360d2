#!/usr/bin/env bash
# Packs what a CUDA machine without network or Node needs for scripts/gpu/run.sh, into .gpu/ (git-ignored):
#   .gpu/node.xz                this machine's node binary (Node 20), xz-compressed
#   .gpu/node_modules.tar.xz    the production Node packages (sharp and its libvips, @huggingface/hub, headers)
#   .gpu/whl/                   Python wheels the GPU image lacks (diffusers at the oracle's pinned version)
#   .gpu/dist.tar.xz            the compiled TypeScript (dist/), compressed: the tree that travels is size-limited
# Then send the working tree with `.gpu` and the tiny test pipeline (test/fixtures/generated/tiny_sd/sd1) and run
# `bash scripts/gpu/run.sh` there (see that file). Parts already packed for the same inputs are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
HDB_ORACLE=1 bash scripts/setup.sh
.venv/bin/python test/oracle/generate.py tokenizer tiny_sd
mkdir -p .gpu/whl
node_version=$(node --version)
if [ ! -f .gpu/node.xz ] || [ "$(cat .gpu/node.version 2>/dev/null)" != "$node_version" ]; then
  xz -T0 -6 -c "$(command -v node)" > .gpu/node.xz.tmp && mv .gpu/node.xz.tmp .gpu/node.xz
  echo "$node_version" > .gpu/node.version
fi
lock=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f .gpu/node_modules.tar.xz ] || [ "$(cat .gpu/node_modules.lock 2>/dev/null)" != "$lock" ]; then
  rm -rf .gpu/npm && mkdir -p .gpu/npm && cp package.json package-lock.json .gpu/npm/
  (cd .gpu/npm && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  tar -C .gpu/npm -cf - node_modules | xz -T0 -6 > .gpu/node_modules.tar.xz.tmp && mv .gpu/node_modules.tar.xz.tmp .gpu/node_modules.tar.xz
  rm -rf .gpu/npm && echo "$lock" > .gpu/node_modules.lock
fi
tar --exclude='*.d.ts' --exclude='*.map' --exclude='.tsbuildinfo' --exclude='test-results.tap' -cf - dist | xz -T0 -6 > .gpu/dist.tar.xz.tmp
mv .gpu/dist.tar.xz.tmp .gpu/dist.tar.xz
diffusers=$(grep -E '^diffusers==' scripts/oracle-requirements.txt)
ls .gpu/whl/"${diffusers/==/-}"-*.whl >/dev/null 2>&1 || python3 -m pip download --quiet --no-deps --only-binary=:all: -d .gpu/whl "$diffusers"
du -sh .gpu test/fixtures/generated/tiny_sd/sd1
