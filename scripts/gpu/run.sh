#!/usr/bin/env bash
# The GPU checks in one go, on a CUDA machine that has PyTorch (CUDA build) for its python3 but perhaps no Node
# and no network: the addon is compiled there against that PyTorch, then
#   1. bench/gpu/parity     the operator table, UNet / VAE / text encoder (fp32, fp16 and bf16 autocast) and tiny
#                           txt2img on CUDA against PyTorch/diffusers on the same GPU;
#   2. bench/gpu/sd15       SD1.5-shaped UNet forward, 25-step txt2img and DreamBooth training step vs diffusers,
#                           fp16 and bf16, batch 1 and 4, with peak memory;
#   3. hdb miniworld build  the mini-world recipe end to end on the GPU at reduced step counts (per-step times of
#                           every stage, for projecting the full recipe);
#   4. bench/unet miniworld the mini-world UNet's training step (batch 32) vs diffusers on the GPU.
# Prepare on a machine with Node and network: `bash scripts/gpu/pack.sh` (fills .gpu/, builds dist/). Run:
#   bash scripts/gpu/run.sh [OUT_DIR]          (default bench/results/gpu-run; results are JSON + logs)
# Each part has its own time limit and the next one runs even if it fails; the exit status says whether all passed.
# A dry run of this script on a machine without a GPU: HDB_GPU_DEVICE=cpu HDB_GPU_QUICK=1 (toy sizes, no timings).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-bench/results/gpu-run}}
device=${HDB_GPU_DEVICE:-cuda:0}
if [ "${HDB_GPU_QUICK:-0}" = 1 ]; then
  sd15_flags=(--shapes mini --steps 2 --batches 1)
  build_flags=(--dataset-size 64 --vae-steps 2 --diffusion-steps 2 --continuation-steps 1 --conditioning-steps 1 --balance-steps 1 --decoder-steps 1)
else
  sd15_flags=()
  build_flags=(--dataset-size 2000 --vae-steps 300 --diffusion-steps 300 --continuation-steps 100 --conditioning-steps 100 --balance-steps 100 --decoder-steps 200)
fi
mkdir -p "$out"
stamp() { echo "[gpu-run $(date +%T)] $*"; }
status=0

# Node: the machine's, else the packed binary.
if ! command -v node >/dev/null; then
  mkdir -p /tmp/hdb-node/bin
  xz -dc .gpu/node.xz > /tmp/hdb-node/bin/node && chmod +x /tmp/hdb-node/bin/node
  export PATH=/tmp/hdb-node/bin:$PATH
fi
[ -d node_modules/sharp ] || tar -xJf .gpu/node_modules.tar.xz
[ -f dist/src/cli/hdb.js ] || tar -xJf .gpu/dist.tar.xz
# Python: the machine's python3 (its CUDA PyTorch is the oracle and the libtorch we link), plus the packed wheels.
python=$(command -v python3)
if ls .gpu/whl/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/hdb-site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/hdb-site${PYTHONPATH:+:$PYTHONPATH}
fi
# The benchmarks and libtorch discovery call .venv/bin/python: point it at that interpreter.
if [ ! -x .venv/bin/python ]; then
  mkdir -p .venv/bin
  printf '#!/bin/sh\nexec %s "$@"\n' "$python" > .venv/bin/python && chmod +x .venv/bin/python
fi
stamp "node $(node --version); $("$python" -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch.compiled_with_cxx11_abi(), "diffusers", diffusers.__version__, "transformers", transformers.__version__)')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# Copies keep no order of modification times: make the compiled JS newer than its sources (fixtures_ops checks).
find dist -name '*.js' -exec touch {} +

stamp "building the addon"
node dist/src/cli/hdb.js build-engine 2>&1 || { stamp "addon build failed"; exit 1; }
cp build/engine.json "$out/addon-build.json"
node dist/src/cli/hdb.js info 2>&1

# What comes back from a GPU machine is a few files: the JSON results, and one log of everything (run.log).
part() {  # part NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  stamp "$name (limit ${limit} s)" | tee -a "$out/run.log"
  local started=$SECONDS
  timeout "$limit" "$@" >> "$out/run.log" 2>&1
  local rc=$?
  stamp "$name: exit $rc after $((SECONDS - started)) s" | tee -a "$out/run.log"
  [ $rc -eq 0 ] || status=1
}
part runtime-tests 30 node --test dist/test/engine/runtime.test.js
kind=${device%%:*}
part parity 100 node dist/bench/gpu/parity.js --device "$device" --out "$out/parity-$kind.json"
part sd15 260 node dist/bench/gpu/sd15.js --device "$device" "${sd15_flags[@]}" --out "$out/sd15-$kind.json"
rm -rf /tmp/hdb-mw-work /tmp/hdb-mw-out
part miniworld-build 110 node dist/src/cli/hdb.js miniworld build --device "$device" --work /tmp/hdb-mw-work --out /tmp/hdb-mw-out --until export "${build_flags[@]}"
cp /tmp/hdb-mw-work/build.json "$out/miniworld-build-$kind.json" 2>/dev/null
[ "${HDB_GPU_QUICK:-0}" = 1 ] || part unet-miniworld 60 node dist/bench/unet/run.js --preset miniworld --device "$device" --rounds 4 --block 5 --out "$out/unet-miniworld-$kind-float32.json"
grep -E "^(unet_forward|txt2img|train_)|summary|FAIL|ERROR|done in|^# (pass|fail)|Error" "$out/run.log" | cut -c1-300
stamp "done, status $status"
exit $status
