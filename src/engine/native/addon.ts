/**
 * Loads the native addon and checks that it runs against the libtorch it was built for.
 *
 * The loader never spawns Python: it reads build/engine.json (written by the build), refuses when
 * `LIBTORCH` now points somewhere else, and after loading asks the addon which libtorch file the dynamic
 * linker actually mapped, refusing when that is not inside the recorded folder.
 */
import { existsSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { isMainThread } from "node:worker_threads";
import { addonPaths, readBuildRecord } from "./build.js";
import { autoThreads } from "./threads.js";

/** Handles are integers into the addon's per-thread tensor table. */
export type Handle = number;
/** A value passed to or returned from an ATen operator through the dispatcher. */
export type NativeValue = Handle | number | boolean | string | null | undefined | NativeValue[] | bigint;

export interface NativeEngine {
  opFind(name: string, overload: string): number;
  opSchema(id: number): string;
  call(id: number, wantResult: boolean, ...args: NativeValue[]): NativeValue;
  fromBytes(bytes: ArrayBufferView | ArrayBuffer, dtype: number, shape: readonly number[]): Handle;
  toBytes(handle: Handle): ArrayBuffer;
  memoryView(handle: Handle): ArrayBuffer;
  free(handle: Handle): void;
  info(handle: Handle): [number, string, number[], boolean];
  shape(handle: Handle): number[];
  requiresGrad(handle: Handle): boolean;
  setRequiresGrad(handle: Handle, value: boolean): void;
  isLeaf(handle: Handle): boolean;
  gradFn(handle: Handle): string | null;
  getGrad(handle: Handle): Handle | null;
  setGrad(handle: Handle, grad: Handle | null): void;
  backward(outputs: Handle[], gradOutputs: (Handle | null)[], retainGraph: boolean | null, createGraph: boolean): void;
  grad(
    outputs: Handle[], inputs: Handle[], gradOutputs: (Handle | null)[], retainGraph: boolean | null,
    createGraph: boolean, allowUnused: boolean,
  ): (Handle | null)[];
  gradEnabled(): boolean;
  setGradEnabled(enabled: boolean): boolean;
  manualSeed(seed: number | bigint): void;
  generatorNew(device: string, seed: number | bigint): number;
  generatorSetSeed(id: number, seed: number | bigint): void;
  generatorGetState(id: number): Handle;
  generatorSetState(id: number, state: Handle): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  memory(): { tensors: number; bytes: number };
  autocastSet(deviceType: string, enabled: boolean, dtype: number): [boolean, number];
  autocastNest(enter: boolean): void;
  devices(): { cuda: number; mps: boolean };
  synchronize(device: string): void;
  deviceMemory(device: string, reset: boolean): DeviceMemory;
  emptyCache(device: string): void;
  buildInfo(): { torchVersion: string; libtorchDir: string; cxx11Abi: boolean; loadedLibrary: string; distributedBackends: string[] };
  /** c10d process groups (engine/distributed.ts); failures throw with code HDB_DISTRIBUTED. */
  distInit(
    masterAddr: string, masterPort: number, rank: number, worldSize: number, timeoutMs: number, isServer: boolean,
    storePrefix: string, glooDevice: string, cudaDevice: number,
  ): number;
  distAllReduce(group: number, tensors: Handle[], op: "sum" | "product" | "min" | "max"): void;
  distBroadcast(group: number, tensors: Handle[], root: number): void;
  distBarrier(group: number): void;
  distDestroy(group: number): void;
}

/** The caching allocator's byte counters of one accelerator device (torch.cuda.memory_stats' aggregate rows). */
export interface DeviceMemory {
  allocated: number;
  peakAllocated: number;
  reserved: number;
  peakReserved: number;
}

function load(): NativeEngine {
  const paths = addonPaths();
  const record = readBuildRecord(paths.record);
  if (!existsSync(paths.addon) || !record) {
    throw new Error(
      `the native addon is not built (${paths.addon} missing). Build it: \`npx hdb build-engine\` ` +
        "(from a clone of the repository: `bash scripts/setup.sh`).",
    );
  }
  const wanted = process.env["LIBTORCH"];
  if (wanted && path.resolve(wanted) !== record.libtorchDir) {
    throw new Error(
      `the native addon was built against libtorch at ${record.libtorchDir}, but LIBTORCH=${wanted}. ` +
        "Rebuild it: `npx hdb build-engine` (or unset LIBTORCH).",
    );
  }
  let addon: NativeEngine;
  try {
    addon = createRequire(import.meta.url)(paths.addon) as NativeEngine;
  } catch (error) {
    throw new Error(
      `cannot load ${paths.addon} (built against libtorch ${record.torchVersion} at ${record.libtorchDir}): ` +
        `${(error as Error).message}. If that libtorch moved or changed, rebuild: \`npx hdb build-engine\`.`,
    );
  }
  const info = addon.buildInfo();
  const loaded = info.loadedLibrary === "unknown" ? undefined : realpathSync(info.loadedLibrary);
  if (loaded && !loaded.startsWith(realpathSync(record.libtorchDir) + path.sep)) {
    throw new Error(
      `the native addon was built against libtorch at ${record.libtorchDir} but the process loaded ${loaded}. ` +
        "Another libtorch is already in this process or on LD_LIBRARY_PATH; remove it or rebuild the addon.",
    );
  }
  return addon;
}

/** The addon of this thread (each worker_threads Worker loads its own instance). */
export const native: NativeEngine = load();

/** libtorch's threads sized to the cores other processes leave free, unless someone chose (see threads.ts). */
const threadsAtLoad = autoThreads(native.getNumThreads(), { mainThread: isMainThread });
if (threadsAtLoad !== undefined) native.setNumThreads(threadsAtLoad);
