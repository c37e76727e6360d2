/**
 * Where a block's parameters are created: `device` and `dtype`, as PyTorch's factory keyword arguments.
 * Building on the "meta" device allocates nothing (shapes only): for structural checks of full-size
 * configs, and for `fromPretrained`, which then materialises each parameter just before its weights load.
 */
import type { DType, Device } from "../../engine/index.js";

export interface ParameterOptions {
  device?: Device;
  dtype?: DType;
}

/** Only the device and dtype of `options` (for passing on to engine layers). */
export function parameterOptions(options: ParameterOptions): ParameterOptions {
  const result: ParameterOptions = {};
  if (options.device !== undefined) result.device = options.device;
  if (options.dtype !== undefined) result.dtype = options.dtype;
  return result;
}
