/**
 * Reading safetensors files and buffers into tensors.
 *
 * Files are read with one copy: the file's bytes pass through a fixed 16 MiB bounce buffer into each
 * tensor's memory (see bounce.ts for why not straight through `memoryView`), so loading a 3.4 GB checkpoint
 * needs about 3.4 GB, not twice that; small neighbouring tensors share one read. Tensors that must change
 * dtype or device are converted one at a time right after reading. The whole header is validated before any
 * tensor is allocated, so a malformed file fails fast and never allocates more than the file's size.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { empty, fromBytes } from "../creation.js";
import { isFloatingDType, type DType } from "../dtype.js";
import { nonFiniteNames } from "../finite.js";
import type { Device, Tensor } from "../tensor.js";
import { BOUNCE_BYTES, buffer as bounceBuffer, fillTensor } from "./bounce.js";
import { decodeHeader, PREFIX_BYTES, readHeaderLength, SafetensorsError, type SafetensorsEntry } from "./format.js";

export interface LoadOptions {
  /** Where the tensors should end up ("cpu" by default). They are read on the CPU and then moved. */
  device?: Device;
  /**
   * Cast floating-point tensors to this dtype (integer and bool tensors keep theirs, as buffers such as
   * position ids must). Unset: every tensor keeps the file's dtype.
   */
  dtype?: DType;
  /** Load only these tensors (all by default); a name the file lacks is an error. */
  names?: readonly string[];
  /**
   * Refuse NaN and ±Inf in floating-point tensors (after any cast: 1e30 read into float16 is infinite): the error
   * names the file, the first such tensor and how many there are. Weights, adapters and checkpoints ask for
   * this, so a damaged or diverged file is refused where it is read, not found later as a black image.
   */
  finite?: boolean;
}

export interface LoadedSafetensors {
  /** The tensors, in the order of their data in the file. */
  tensors: Map<string, Tensor>;
  /** The `__metadata__` strings ({} when the file has none). */
  metadata: Record<string, string>;
}

export interface SafetensorsHeader {
  /** Every tensor's dtype, shape and [begin, end) byte range in the data area, in data order. */
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data area (8 + header length): a tensor's bytes are at dataStart + begin. */
  dataStart: number;
}

/** Label used in error messages for in-memory input. */
const BYTES_SOURCE = "safetensors bytes";
/** Largest single read; readSync refuses lengths of 2 GiB and more. */
const MAX_READ = 1 << 30;

/** Reads and validates a file's header without loading any tensor data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, "r");
  try {
    return readHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Loads tensors from a safetensors file. Every malformed file gives a SafetensorsError naming the file, and
 * the tensor when one is at fault; I/O errors (missing file, permissions) are passed through. If loading
 * fails part-way, the tensors already made are disposed.
 */
export function loadSafetensors(path: string, options: LoadOptions = {}): LoadedSafetensors {
  const fd = openSync(path, "r");
  try {
    const header = readHeader(fd, path);
    const wanted = selectEntries(header.entries, options.names, path);
    const read = fileReader(fd, path, header.dataStart, [...wanted.values()]);
    const tensors = materialize(wanted, options, read);
    if (options.finite) refuseNonFinite(tensors, wanted, path);
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

/** Throws (disposing the tensors) when any floating-point tensor holds NaN or ±Inf; see LoadOptions.finite. */
function refuseNonFinite(tensors: Map<string, Tensor>, entries: Map<string, SafetensorsEntry>, source: string): void {
  const bad = nonFiniteNames(tensors);
  if (bad.length === 0) return;
  const first = bad[0]!;
  const [stored, loaded] = [entries.get(first)!.dtype, tensors.get(first)!.dtype];
  const cast = loaded !== stored ? ` once cast from ${stored} to ${loaded}` : "";
  const others = bad.length > 1 ? ` (${bad.length} of its ${tensors.size} tensors do)` : "";
  for (const tensor of tensors.values()) tensor.dispose();
  throw new SafetensorsError(`holds NaN or infinite values${cast}${others}: the file is damaged or its weights diverged`, { source, tensor: first });
}

/** Loads tensors from a whole safetensors file held in memory (one copy per tensor). */
export function parseSafetensors(bytes: Uint8Array, options: LoadOptions = {}): LoadedSafetensors {
  const headerLength = readHeaderLength(bytes.subarray(0, PREFIX_BYTES), bytes.length, BYTES_SOURCE);
  const dataStart = PREFIX_BYTES + headerLength;
  const { entries, metadata } = decodeHeader(bytes.subarray(PREFIX_BYTES, dataStart), bytes.length - dataStart, BYTES_SOURCE);
  const wanted = selectEntries(entries, options.names, BYTES_SOURCE);
  const read = (entry: SafetensorsEntry): Tensor =>
    fromBytes(bytes.subarray(dataStart + entry.begin, dataStart + entry.end), entry.dtype, entry.shape);
  return { tensors: materialize(wanted, options, read), metadata };
}

/** Header of an open file: the prefix and JSON are read with two small reads; the data is not touched. */
function readHeader(fd: number, path: string): SafetensorsHeader {
  const stat = fstatSync(fd);
  // Opening a folder succeeds on Linux; reading it would fail with a bare EISDIR that names no path.
  if (stat.isDirectory()) throw new SafetensorsError("is a folder, not a safetensors file", { source: path });
  const size = stat.size;
  const prefix = new Uint8Array(PREFIX_BYTES);
  readExactly(fd, prefix.subarray(0, Math.min(size, PREFIX_BYTES)), 0, path);
  const headerLength = readHeaderLength(prefix, size, path);
  const headerBytes = new Uint8Array(headerLength);
  readExactly(fd, headerBytes, PREFIX_BYTES, path);
  const dataStart = PREFIX_BYTES + headerLength;
  const { entries, metadata } = decodeHeader(headerBytes, size - dataStart, path);
  return { entries, metadata, dataStart };
}

/**
 * Reads tensors of an open file, in data order. A tensor of up to BOUNCE_BYTES is read together with the
 * requested tensors that follow it contiguously, in one read into the bounce buffer, and copied out with
 * `fromBytes`; a bigger one is read chunk by chunk into its own memory. Either way the data is in memory once.
 */
function fileReader(fd: number, path: string, dataStart: number, entries: SafetensorsEntry[]): (entry: SafetensorsEntry) => Tensor {
  const order = new Map(entries.map((entry, index) => [entry, index]));
  // The data-area range [windowStart, windowEnd) currently held at the start of the bounce buffer.
  let windowStart = 0;
  let windowEnd = 0;
  return (entry) => {
    const nbytes = entry.end - entry.begin;
    if (nbytes > BOUNCE_BYTES) {
      windowEnd = windowStart; // fillTensor overwrites the bounce buffer
      const tensor = empty(entry.shape, { dtype: entry.dtype, device: "cpu" });
      try {
        fillTensor(tensor, nbytes, (into, offset) => readExactly(fd, into, dataStart + entry.begin + offset, path));
      } catch (error) {
        tensor.dispose();
        throw error;
      }
      return tensor;
    }
    const { bytes } = bounceBuffer();
    if (entry.begin < windowStart || entry.end > windowEnd) {
      windowStart = entry.begin;
      windowEnd = entry.end;
      for (let i = order.get(entry)! + 1; i < entries.length; i++) {
        const next = entries[i]!;
        if (next.begin !== windowEnd || next.end - windowStart > BOUNCE_BYTES) break;
        windowEnd = next.end;
      }
      readExactly(fd, bytes.subarray(0, windowEnd - windowStart), dataStart + windowStart, path);
    }
    return fromBytes(bytes.subarray(entry.begin - windowStart, entry.end - windowStart), entry.dtype, entry.shape);
  };
}

/** Fills `into` from the file at `position`, looping over short reads; a file that ends early is an error. */
function readExactly(fd: number, into: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    const got = readSync(fd, into, done, Math.min(into.length - done, MAX_READ), position + done);
    if (got === 0) {
      throw new SafetensorsError(`file ended at byte ${position + done}, before the ${position + into.length} its header describes (changed while reading?)`, { source: path });
    }
    done += got;
  }
}

/** The requested entries in data order; every requested name must exist. */
function selectEntries(
  entries: Map<string, SafetensorsEntry>, names: readonly string[] | undefined, source: string,
): Map<string, SafetensorsEntry> {
  if (names === undefined) return entries;
  const requested = new Set(names);
  for (const name of requested) {
    if (!entries.has(name)) throw new SafetensorsError(`no such tensor (the file has ${entries.size})`, { source, tensor: name });
  }
  return new Map([...entries].filter(([name]) => requested.has(name)));
}

interface Target {
  dtype: DType;
  device: Device;
  /** Whether the tensor must leave the dtype or device it is read in. */
  convert: boolean;
}

function targetOf(entry: SafetensorsEntry, options: LoadOptions): Target {
  const dtype = options.dtype !== undefined && isFloatingDType(entry.dtype) ? options.dtype : entry.dtype;
  const device = options.device ?? "cpu";
  return { dtype, device, convert: dtype !== entry.dtype || device !== "cpu" };
}

/**
 * Makes the tensors of `entries` with `read` (which gives a CPU tensor in the file's dtype) and converts each
 * one that must change dtype or device right away, freeing its CPU original: the peak stays one tensor above
 * the result. If anything fails, every tensor made so far is disposed.
 */
function materialize(
  entries: Map<string, SafetensorsEntry>, options: LoadOptions, read: (entry: SafetensorsEntry) => Tensor,
): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  try {
    for (const [name, entry] of entries) {
      const target = targetOf(entry, options);
      const tensor = read(entry);
      if (!target.convert) {
        tensors.set(name, tensor);
        continue;
      }
      try {
        tensors.set(name, tensor.to({ dtype: target.dtype, device: target.device }));
      } finally {
        tensor.dispose();
      }
    }
  } catch (error) {
    for (const tensor of tensors.values()) tensor.dispose();
    throw error;
  }
  return tensors;
}
