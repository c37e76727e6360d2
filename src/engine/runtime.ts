/** The compute runtime: threads, devices, synchronisation and what libtorch this is. */
import { native, type DeviceMemory } from "./native/addon.js";

export type { DeviceMemory };

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

/**
 * Bytes the caching allocator of an accelerator device holds for live tensors (`allocated`) and has taken from
 * the device (`reserved`), now and at their peak since the last reset, as torch.cuda.memory_allocated /
 * max_memory_allocated / memory_reserved / max_memory_reserved. `{ resetPeak: true }` clears the peaks after
 * reading them (torch.cuda.reset_peak_memory_stats). Throws for "cpu" and on a libtorch without that device.
 */
export function deviceMemory(device: string, options: { resetPeak?: boolean } = {}): DeviceMemory {
  return native.deviceMemory(device, options.resetPeak ?? false);
}

/** Gives the cached, unused blocks of an accelerator device back to it (torch.cuda.empty_cache); no-op on CPU. */
export function emptyCache(device: string): void {
  native.emptyCache(device);
}

export function buildInfo(): ReturnType<typeof native.buildInfo> {
  return native.buildInfo();
}

/**
 * Refuses a device this libtorch cannot use, in one line that says how to get one: without this, the first tensor
 * made there fails inside the dispatcher with libtorch's 50-line list of backends. Accepts "cpu", "meta",
 * "cuda", "cuda:<i>" and "mps" when present.
 */
export function checkDevice(device: string): void {
  const match = /^(cpu|meta|mps|cuda)(?::(\d+))?$/.exec(device);
  if (!match) throw new Error(`device '${device}' is not one of cpu, cuda, cuda:<index>, mps`);
  const [, kind, index] = match;
  const info = devices();
  if (kind === "cuda") {
    if (info.cuda === 0) {
      const { torchVersion, libtorchDir } = buildInfo();
      throw new Error(`device ${device}: this libtorch (torch ${torchVersion} at ${libtorchDir}) sees no CUDA GPU; on a machine with one, ` +
        "install PyTorch's CUDA build into .venv (or point LIBTORCH at a CUDA libtorch) and rebuild the addon: npx hdb build-engine");
    }
    if (index !== undefined && Number(index) >= info.cuda) {
      throw new Error(`device ${device} does not exist: this machine has ${info.cuda} CUDA device${info.cuda === 1 ? "" : "s"} (cuda:0${info.cuda > 1 ? `…cuda:${info.cuda - 1}` : ""})`);
    }
  }
  if (kind === "mps" && !info.mps) throw new Error(`device ${device}: this libtorch has no MPS (Apple GPU) support`);
}
