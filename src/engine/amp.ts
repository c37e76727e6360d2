/**
 * Automatic mixed precision: autocast regions (bf16/fp16 on CUDA, bf16 on CPU) as torch.autocast.
 * Inside a region, libtorch's autocast dispatch key casts the inputs of matmul/conv-like operators to the
 * low-precision dtype and keeps precision-sensitive ones (softmax, norms, losses) in float32.
 * The fp16 loss scaler lives with the optimisers (optim/grad-scaler.ts).
 */
import { dtypeCode, type DType } from "./dtype.js";
import { native } from "./native/addon.js";

export function autocast<T>(deviceType: "cuda" | "cpu" | "mps", dtype: DType, fn: () => T, enabled = true): T {
  if (dtype !== "float16" && dtype !== "bfloat16") throw new TypeError(`autocast dtype must be float16 or bfloat16, got ${dtype}`);
  const [wasEnabled, previousDType] = native.autocastSet(deviceType, enabled, dtypeCode(dtype));
  native.autocastNest(true);
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error("autocast does not take async functions");
    return result;
  } finally {
    native.autocastNest(false);
    native.autocastSet(deviceType, wasEnabled, previousDType);
  }
}
