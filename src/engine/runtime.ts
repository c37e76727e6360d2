/** The compute runtime: threads, devices, synchronisation and what libtorch this is. */
import { native } from "./native/addon.js";

/** Intra-op threads of libtorch (torch.set_num_threads). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

export interface DeviceInfo {
  /** Number of CUDA devices (0 for a CPU build or without a GPU). */
  cuda: number;
  mps: boolean;
}
export function devices(): DeviceInfo {
  return native.devices();
}

/** The best available device: "cuda:0", then "mps", then "cpu". */
export function defaultDevice(): string {
  const info = devices();
  if (info.cuda > 0) return "cuda:0";
  if (info.mps) return "mps";
  return "cpu";
}

/** Waits for queued device work (a no-op on CPU); needed around timings on CUDA. */
export function synchronize(device = "cpu"): void {
  native.synchronize(device);
}

export function buildInfo(): ReturnType<typeof native.buildInfo> {
  return native.buildInfo();
}
