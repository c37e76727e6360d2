/**
 * The safetensors format itself, with no I/O and no tensors: the dtype names, header decoding and
 * validation, header encoding and the data layout of a file being written.
 *
 * A file is an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"__metadata__": {string: string}, name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * then the data area; offsets are relative to the data area. Validation follows the reference reader
 * (huggingface/safetensors 0.8.0, checked by test): the offsets, sorted, must tile the data area exactly
 * (no gap, no overlap, nothing left over) and each span must be exactly shape x dtype size; unknown fields
 * in an entry are ignored and `"__metadata__": null` means no metadata, as there. Beyond it, this
 * reader rejects duplicate keys (the reference keeps the last silently), dtypes this engine lacks (F8_*, U16,
 * U32, U64, C64, ...) and shapes whose sizes pass 2^53, which libtorch could not allocate anyway.
 */
import type { DType } from "../dtype.js";
import { JsonNumber, JsonSyntaxError, parseJson, type JsonObject, type JsonValue } from "./json.js";

/** The largest header the reference reader accepts (100 MB); anything longer is taken as corruption. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Bytes of the length prefix. */
export const PREFIX_BYTES = 8;

/** Every malformed-input problem, reading or writing. The message names the file and tensor when known. */
export class SafetensorsError extends Error {
  /** The file path (or "safetensors bytes" for in-memory input) the problem was found in, when known. */
  readonly source: string | undefined;
  /** The tensor key the problem concerns, when it concerns one. */
  readonly tensor: string | undefined;

  constructor(problem: string, where: { source?: string; tensor?: string } = {}) {
    const prefix = [where.source, where.tensor === undefined ? undefined : `tensor ${JSON.stringify(where.tensor)}`]
      .filter((part) => part !== undefined)
      .join(": ");
    super(prefix ? `${prefix}: ${problem}` : problem);
    this.name = "SafetensorsError";
    this.source = where.source;
    this.tensor = where.tensor;
  }
}

/** Format dtype name -> engine dtype, for the dtypes this engine can hold. */
const ENGINE_DTYPES: Readonly<Record<string, DType>> = {
  BOOL: "bool", U8: "uint8", I8: "int8", I16: "int16", F16: "float16", BF16: "bfloat16",
  I32: "int32", F32: "float32", F64: "float64", I64: "int64",
};
/** Format dtypes the reference reader knows but this engine has no DType for. */
const OTHER_FORMAT_DTYPES = new Set([
  "F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "U16", "U32", "C64", "U64",
]);
const FORMAT_NAMES = new Map<DType, string>(Object.entries(ENGINE_DTYPES).map(([name, dtype]) => [dtype, name]));
/** Element sizes in bytes, for the supported dtypes. */
const ELEMENT_BYTES: Readonly<Record<DType, number>> = {
  bool: 1, uint8: 1, int8: 1, int16: 2, float16: 2, bfloat16: 2, int32: 4, float32: 4, float64: 8, int64: 8,
};
/** Position in the reference's Dtype enum; writers order tensors by it, descending, so big types come first. */
const WRITE_RANK: Readonly<Record<DType, number>> = {
  bool: 0, uint8: 1, int8: 2, int16: 3, float16: 4, bfloat16: 5, int32: 6, float32: 7, float64: 8, int64: 9,
};

/** The format's name for an engine dtype ("float32" -> "F32"). */
export function formatDTypeName(dtype: DType): string {
  const name = FORMAT_NAMES.get(dtype);
  if (name === undefined) throw new SafetensorsError(`dtype ${String(dtype)} cannot be stored in safetensors`);
  return name;
}

/** Where one tensor's bytes lie in the data area ([begin, end), relative to the data area's start). */
export interface SafetensorsEntry {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** A decoded, validated header. `entries` is in data order (ascending offsets). */
export interface DecodedHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/**
 * Checks the 8-byte prefix against the input's total length and returns the header length N. Checked in
 * the reference's order: too short, over the 100 MB cap, longer than the input.
 */
export function readHeaderLength(prefix: Uint8Array, totalLength: number, source: string): number {
  if (totalLength < PREFIX_BYTES || prefix.length < PREFIX_BYTES) {
    throw new SafetensorsError(`${totalLength} bytes long, shorter than the 8-byte header length prefix`, { source });
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, PREFIX_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`, { source });
  }
  const length = Number(n);
  if (PREFIX_BYTES + length > totalLength) {
    throw new SafetensorsError(`header length ${length} runs past the end of the input (${totalLength} bytes)`, { source });
  }
  return length;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes and validates a header. `dataLength` is the size of the data area (input length - 8 - N): the
 * tensors must cover it exactly. Linear in the header's length (plus a sort of the entries).
 */
export function decodeHeader(headerBytes: Uint8Array, dataLength: number, source: string): DecodedHeader {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw new SafetensorsError("header is not valid UTF-8", { source });
  }
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new SafetensorsError(`header is not valid JSON: ${error.message}`, { source });
    throw error;
  }
  if (!(root instanceof Map)) throw new SafetensorsError("header is not a JSON object", { source });

  let metadata: Record<string, string> = {};
  const unordered: [string, SafetensorsEntry][] = [];
  for (const [key, value] of root) {
    if (key === "__metadata__") metadata = decodeMetadata(value, source);
    else unordered.push([key, decodeEntry(value, dataLength, { source, tensor: key })]);
  }
  const entries = checkLayout(unordered, dataLength, source);
  return { entries, metadata };
}

function decodeMetadata(value: JsonValue, source: string): Record<string, string> {
  if (value === null) return {};
  if (!(value instanceof Map)) throw new SafetensorsError("__metadata__ is not an object of strings", { source });
  for (const [key, item] of value) {
    if (typeof item !== "string") {
      throw new SafetensorsError(`__metadata__ value of key ${JSON.stringify(key)} is not a string`, { source });
    }
  }
  // fromEntries defines own properties, so a key like "__proto__" is kept as data.
  return Object.fromEntries(value as Map<string, string>);
}

type Where = { source: string; tensor: string };

/** One tensor's entry, checked on its own: fields, dtype, shape, offsets within the data area, byte count. */
function decodeEntry(value: JsonValue, dataLength: number, where: Where): SafetensorsEntry {
  if (!(value instanceof Map)) throw new SafetensorsError("entry is not an object with dtype, shape and data_offsets", where);
  const dtype = decodeDType(field(value, "dtype", where), where);
  const shape = integerList(field(value, "shape", where), "shape", where);
  const offsets = integerList(field(value, "data_offsets", where), "data_offsets", where);
  if (offsets.length !== 2) throw new SafetensorsError(`data_offsets has ${offsets.length} items, expected [begin, end]`, where);
  const [begin, end] = offsets as [number, number];
  const span = `data_offsets [${begin}, ${end}]`;
  if (end < begin) throw new SafetensorsError(`${span} end before begin`, where);
  if (end > dataLength) throw new SafetensorsError(`${span} run past the end of the data area (${dataLength} bytes)`, where);
  const nbytes = byteSize(shape, dtype, where);
  if (nbytes !== end - begin) {
    throw new SafetensorsError(
      `shape [${shape.join(", ")}] of ${formatDTypeName(dtype)} needs ${nbytes} bytes but ${span} span ${end - begin}`, where);
  }
  return { dtype, shape, begin, end };
}

function field(entry: JsonObject, name: string, where: Where): JsonValue {
  const value = entry.get(name);
  if (value === undefined) throw new SafetensorsError(`missing field ${name}`, where);
  return value;
}

function decodeDType(value: JsonValue, where: Where): DType {
  if (typeof value !== "string") throw new SafetensorsError("dtype is not a string", where);
  const dtype = ENGINE_DTYPES[value];
  if (dtype !== undefined && Object.hasOwn(ENGINE_DTYPES, value)) return dtype;
  if (OTHER_FORMAT_DTYPES.has(value)) {
    throw new SafetensorsError(`dtype ${value} is not supported by this engine (supported: ${Object.keys(ENGINE_DTYPES).join(", ")})`, where);
  }
  throw new SafetensorsError(`unknown dtype ${JSON.stringify(value)}`, where);
}

/** A list of non-negative integers written as plain integers (the reference rejects 1.0, 1e0 and -0). */
function integerList(value: JsonValue, name: string, where: Where): number[] {
  if (!Array.isArray(value)) throw new SafetensorsError(`${name} is not a list of non-negative integers`, where);
  return value.map((item) => {
    if (!(item instanceof JsonNumber) || !/^[0-9]+$/.test(item.text)) {
      const shown = item instanceof JsonNumber ? item.text : JSON.stringify(item);
      throw new SafetensorsError(`${name} is not a list of non-negative integers (found ${shown})`, where);
    }
    const number = Number(item.text);
    if (!Number.isSafeInteger(number)) throw new SafetensorsError(`${name} value ${item.text} is too large`, where);
    return number;
  });
}

/**
 * Bytes of a contiguous tensor. Besides the element count, the largest stride (product of max(size, 1))
 * must stay below 2^53, so that libtorch can lay the tensor out even when a zero size makes it empty.
 */
function byteSize(shape: readonly number[], dtype: DType, where: Where): number {
  let numel = 1;
  let extent = 1;
  for (const size of shape) {
    numel *= size;
    extent *= Math.max(size, 1);
    if (extent > Number.MAX_SAFE_INTEGER) throw new SafetensorsError(`shape [${shape.join(", ")}] is too large`, where);
  }
  const nbytes = numel * ELEMENT_BYTES[dtype];
  if (!Number.isSafeInteger(nbytes)) throw new SafetensorsError(`shape [${shape.join(", ")}] is too large`, where);
  return nbytes;
}

/** Sorts entries by offsets and checks that they tile [0, dataLength) exactly, as the reference requires. */
function checkLayout(unordered: [string, SafetensorsEntry][], dataLength: number, source: string): Map<string, SafetensorsEntry> {
  const sorted = unordered.sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const [name, entry] of sorted) {
    if (entry.begin > cursor) {
      throw new SafetensorsError(`data_offsets [${entry.begin}, ${entry.end}] leave a gap: data bytes ${cursor}..${entry.begin} belong to no tensor`, { source, tensor: name });
    }
    if (entry.begin < cursor) {
      throw new SafetensorsError(`data_offsets [${entry.begin}, ${entry.end}] overlap tensor ${JSON.stringify(previous)}`, { source, tensor: name });
    }
    cursor = entry.end;
    previous = name;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError(`tensors cover ${cursor} of the ${dataLength} data bytes; the rest belongs to no tensor`, { source });
  }
  return new Map(sorted);
}

/** A tensor about to be written: name, dtype, shape, and the caller's handle on its data. */
export interface PlannedTensor<T> extends SafetensorsEntry {
  name: string;
  value: T;
}

/**
 * Orders tensors as the reference writer does (dtype rank descending, then name by UTF-8 bytes), so files
 * come out byte-identical to Python's for the same tensors, and gives each its contiguous offsets.
 */
export function planLayout<T>(
  items: { name: string; dtype: DType; shape: readonly number[]; value: T }[],
  source: string,
): PlannedTensor<T>[] {
  const keyed = items.map((item) => ({ item, nameBytes: Buffer.from(item.name, "utf8") }));
  keyed.sort((a, b) => WRITE_RANK[b.item.dtype] - WRITE_RANK[a.item.dtype] || Buffer.compare(a.nameBytes, b.nameBytes));
  let offset = 0;
  return keyed.map(({ item }) => {
    const where = { source, tensor: item.name };
    const begin = offset;
    offset += byteSize(item.shape, item.dtype, where);
    return { name: item.name, dtype: item.dtype, shape: [...item.shape], begin, end: offset, value: item.value };
  });
}

const LONE_SURROGATE = /\p{Cs}/u;

/** Rejects a tensor name or metadata string that UTF-8 (and so the format) cannot carry. */
export function checkWritableString(text: unknown, what: string, source: string): void {
  if (typeof text !== "string") throw new SafetensorsError(`${what} is not a string`, { source });
  if (LONE_SURROGATE.test(text)) throw new SafetensorsError(`${what} ${JSON.stringify(text)} contains a lone UTF-16 surrogate`, { source });
}

/**
 * The length prefix and header for planned tensors, padded with spaces so that the data area starts at a
 * multiple of 8 (as the reference writer does). `__metadata__` comes first and only when given.
 */
export function encodeHeader(tensors: readonly (SafetensorsEntry & { name: string })[], metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) {
    const items = Object.entries(metadata).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    parts.push(`"__metadata__":{${items.join(",")}}`);
  }
  for (const t of tensors) {
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${formatDTypeName(t.dtype)}","shape":[${t.shape.join(",")}],"data_offsets":[${t.begin},${t.end}]}`);
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new SafetensorsError(`header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const out = new Uint8Array(PREFIX_BYTES + padded).fill(0x20, PREFIX_BYTES + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, PREFIX_BYTES);
  return out;
}
