/**
 * safetensors fuzzing: thousands of deterministic mutations of valid files (byte flips, truncation, header
 * length edits, header text and JSON edits, junk). Each must load or throw a SafetensorsError, never any
 * other error, never crash; the in-memory and file readers must agree; and a sample is checked against
 * the reference Python package, which must accept exactly what this reader accepts, apart from the
 * documented places where this reader is stricter.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  arange, full, loadSafetensors, memory, parseSafetensors, readSafetensorsHeader, SafetensorsError, serializeSafetensors,
  tidy, zeros,
} from "../../src/engine/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const python = path.join(root, ".venv/bin/python");
const oracle = path.join(root, "test/oracle/fixtures_safetensors.py");

const ITERATIONS = 5000;
/** Every FILE_EVERY-th mutation also goes through loadSafetensors and readSafetensorsHeader. */
const FILE_EVERY = 3;
/** Every REFERENCE_EVERY-th mutation is also given to the reference package. */
const REFERENCE_EVERY = 5;
/** Why this reader may reject what the reference accepts (see format.ts). */
const STRICTER = /duplicate key|is not supported by this engine|is too large/;

/** mulberry32: small, fast, deterministic. */
class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

function seeds(): Uint8Array[] {
  return tidy(() => {
    const handMade = (header: string, data: number): Uint8Array => {
      const text = Buffer.from(header, "utf8");
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(BigInt(text.length));
      return new Uint8Array(Buffer.concat([prefix, text, Buffer.alloc(data, 1)]));
    };
    return [
      serializeSafetensors({
        weight: arange(0, 12, 1, { dtype: "float32" }).reshape(3, 4), bias: zeros([4], { dtype: "bfloat16" }),
        ids: arange(0, 5, 1, { dtype: "int64" }), mask: full([2, 2], 1, { dtype: "bool" }), "名前": full([], 3, { dtype: "float16" }),
      }, { format: "pt", note: "é" }),
      serializeSafetensors({ empty: zeros([0, 3]), scalar: full([], 2, { dtype: "int32" }), bytes: zeros([3], { dtype: "uint8" }) }),
      serializeSafetensors({}, { only: "metadata" }),
      // Unpadded, leading whitespace, entries out of data order, an unknown extra field: all valid.
      handMade(' {"b":{"dtype":"I16","shape":[2],"data_offsets":[8,12],"extra":[1,{"x":null}]},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}', 12),
    ];
  });
}

const TOKENS = ['"', "{", "}", "[", "]", ",", ":", "\\", "\\u", "\\ud800", "-", "1e5", "0", "1.0", "99999999999999999999", "null",
  "é", "\u0000", " ", '"__metadata__"', '"dtype"', '"shape"', '"data_offsets"', '"F32"', '"U16"', '"x"', "\xff", "\ufeff"];

function split(bytes: Uint8Array): { header: string; data: Uint8Array } | null {
  if (bytes.length < 8) return null;
  const n = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  if (8 + n > bytes.length) return null;
  return { header: Buffer.from(bytes.subarray(8, 8 + n)).toString("latin1"), data: bytes.subarray(8 + n) };
}

/** Reassembles a file from header bytes (as a latin1 string) and data, with a correct length prefix. */
function join(header: string, data: Uint8Array, r: Random): Uint8Array {
  let text = Buffer.from(header, "latin1");
  if (r.next() < 0.5) text = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  return new Uint8Array(Buffer.concat([prefix, text, data]));
}

type Mutator = (bytes: Uint8Array, r: Random) => Uint8Array;

const flipBytes: Mutator = (bytes, r) => {
  const out = Uint8Array.from(bytes);
  if (out.length === 0) return out;
  const headerEnd = out.length < 8 ? out.length : Math.min(out.length, 8 + Buffer.from(out.buffer).readUInt32LE(0));
  for (let k = 1 + r.int(4); k > 0; k--) {
    const at = r.next() < 0.6 && headerEnd > 0 ? r.int(headerEnd) : r.int(out.length);
    out[at] = r.next() < 0.5 ? out[at]! ^ (1 << r.int(8)) : r.int(256);
  }
  return out;
};

/** Valid edits too, so that accepted files are common enough to exercise loading: data bytes, names, order. */
const validEdit: Mutator = (bytes, r) => {
  const parts = split(bytes);
  if (!parts) return bytes;
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(parts.header, "latin1").toString("utf8")) as Record<string, unknown>;
  } catch {
    return bytes;
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return bytes;
  const data = Uint8Array.from(parts.data);
  if (data.length > 0) data[r.int(data.length)] = r.int(256);
  const entries = Object.entries(header);
  if (entries.length > 0 && r.next() < 0.5) {
    const at = r.int(entries.length);
    if (entries[at]![0] !== "__metadata__") entries[at]![0] = r.pick(["ü", "a.b", "", "🙂", "__proto__", "x".repeat(r.int(50))]) + at;
  }
  if (r.next() < 0.5) entries.reverse();
  return join(Buffer.from(JSON.stringify(Object.fromEntries(entries)), "utf8").toString("latin1"), data, r);
};

const truncate: Mutator = (bytes, r) => bytes.slice(0, r.int(bytes.length + 1));

const extend: Mutator = (bytes, r) => new Uint8Array(Buffer.concat([bytes, r.bytes(1 + r.int(16))]));

const editLength: Mutator = (bytes, r) => {
  if (bytes.length < 8) return bytes;
  const out = Buffer.from(bytes);
  const n = out.readBigUInt64LE(0);
  const choices = [n + BigInt(r.int(17) - 8), BigInt(r.int(bytes.length + 16)), 0n, 100_000_001n, 2n ** 64n - 1n,
    BigInt(r.int(2 ** 32)) * BigInt(r.int(2 ** 32)), 2n ** 53n + 1n];
  const value = r.pick(choices);
  out.writeBigUInt64LE(value < 0n ? 0n : value % 2n ** 64n);
  return new Uint8Array(out);
};

const editText: Mutator = (bytes, r) => {
  const parts = split(bytes);
  if (!parts) return bytes;
  let h = parts.header;
  const at = r.int(h.length + 1);
  switch (r.int(5)) {
    case 0: h = h.slice(0, at) + h.slice(at + 1 + r.int(4)); break;
    case 1: h = h.slice(0, at) + Buffer.from(r.pick(TOKENS), "utf8").toString("latin1") + h.slice(at); break;
    case 2: h = h.replace(/[0-9]/g, (d) => (r.next() < 0.15 ? String(r.int(10)) : d)); break;
    case 3: { const from = r.int(h.length + 1); h = h.slice(0, at) + h.slice(from, from + r.int(40)) + h.slice(at); break; }
    default: h = h.replace(/"[^"]*":/, (key) => (r.next() < 0.5 ? '"__metadata__":' : key + key)); break;
  }
  return join(h, parts.data, r);
};

const editJson: Mutator = (bytes, r) => {
  const parts = split(bytes);
  let header: Record<string, Record<string, unknown>>;
  try {
    header = JSON.parse(Buffer.from(parts!.header, "latin1").toString("utf8")) as typeof header;
  } catch {
    return editText(bytes, r);
  }
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
  if (!isObject(header)) return editText(bytes, r);
  const keys = Object.keys(header);
  const key = keys.length > 0 ? r.pick(keys) : "__metadata__";
  if (!isObject(header[key])) header[key] = {};
  const entry = header[key];
  const shape = Array.isArray(entry.shape) ? (entry.shape as unknown[]) : [];
  const offsets = Array.isArray(entry.data_offsets) ? (entry.data_offsets as unknown[]) : [];
  switch (r.int(9)) {
    case 0: entry.dtype = r.pick(["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "F8_E4M3", "x", 5, null]); break;
    case 1: shape.push(r.pick([0, 1, 2, 3, 4])); entry.shape = shape; break;
    case 2: shape.pop(); entry.shape = shape; break;
    case 3: shape[r.int(shape.length + 1)] = r.pick([0, 1, 2, 3, -1, 1.5, 2 ** 53, 2 ** 60, "2", null]); entry.shape = shape; break;
    case 4: offsets[r.int(2)] = Math.max(0, Number(offsets[0] ?? 0) + r.int(17) - 8); entry.data_offsets = offsets; break;
    case 5: entry.data_offsets = r.pick([[], [0], [offsets[1], offsets[0]], [0, 2 ** 40], [0, 0, 0], "x"]); break;
    case 6: delete entry[r.pick(["dtype", "shape", "data_offsets"])]; break;
    case 7: entry[r.pick(["extra", "k"])] = r.pick([1, "v", null, [1, { y: [] }]]); break;
    default: header[r.pick(keys.concat("__metadata__"))] = r.pick([null, 1, [], {}, "s"]) as never; break;
  }
  let data = parts!.data;
  if (r.next() < 0.3) data = r.next() < 0.5 ? data.subarray(0, Math.max(0, data.length - 1 - r.int(8))) : new Uint8Array(Buffer.concat([data, r.bytes(r.int(8) + 1)]));
  return join(Buffer.from(JSON.stringify(header), "utf8").toString("latin1"), data, r);
};

const junk: Mutator = (_bytes, r) => {
  if (r.next() < 0.5) return r.bytes(r.int(40));
  const header = r.bytes(r.int(32));
  return join(Buffer.from(header).toString("latin1"), r.bytes(r.int(16)), r);
};

const MUTATORS: Mutator[] = [validEdit, validEdit, validEdit, flipBytes, flipBytes, truncate, extend, editLength, editText, editText, editJson, editJson, editJson, junk];

let work: string;
before(() => {
  work = mkdtempSync(path.join(tmpdir(), "safetensors-fuzz-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** null when accepted, else the error (which must be a SafetensorsError). Loaded tensors are disposed. */
function attempt(run: () => { tensors: Map<string, { dispose(): void }> } | object): SafetensorsError | null {
  try {
    const result = run();
    if ("tensors" in result) result.tensors.forEach((t) => t.dispose());
    return null;
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    return error;
  }
}
const problem = (error: SafetensorsError | null): string | null => (error === null ? null : error.message.slice(error.source!.length + 2));

test(`${ITERATIONS} mutated files load or throw SafetensorsError, in memory and from disk alike`, () => {
  const r = new Random(20240611);
  const bases = seeds();
  const sampleFolder = path.join(work, "samples");
  mkdirSync(sampleFolder);
  const samples = new Map<string, SafetensorsError | null>();
  const scratch = path.join(work, "scratch.safetensors");
  writeFileSync(scratch, bases[0]!);
  attempt(() => loadSafetensors(scratch)); // creates the bounce buffer before memory is measured
  const tensorsBefore = memory().tensors;
  let accepted = 0;
  const started = Date.now();

  for (let i = 0; i < ITERATIONS; i++) {
    let bytes = r.pick(bases);
    for (let ops = 1 + r.int(3); ops > 0; ops--) bytes = r.pick(MUTATORS)(bytes, r);
    const context = `mutation ${i} (${Buffer.from(bytes.subarray(0, 200)).toString("latin1")})`;
    let parsed: SafetensorsError | null;
    try {
      parsed = attempt(() => parseSafetensors(bytes));
    } catch (error) {
      assert.fail(`${context}: not a SafetensorsError: ${String(error)}`);
    }
    if (parsed === null) accepted++;
    if (i % FILE_EVERY === 0) {
      writeFileSync(scratch, bytes);
      const loaded = attempt(() => loadSafetensors(scratch));
      const header = attempt(() => readSafetensorsHeader(scratch));
      assert.equal(problem(loaded), problem(parsed), `${context}: load and parse disagree`);
      assert.equal(problem(header), problem(parsed), `${context}: readSafetensorsHeader and parse disagree`);
    }
    if (i % REFERENCE_EVERY === 0) {
      const name = `${String(i).padStart(5, "0")}.st`;
      writeFileSync(path.join(sampleFolder, name), bytes);
      samples.set(name, parsed);
    }
  }

  const seconds = (Date.now() - started) / 1000;
  console.log(`fuzz: ${ITERATIONS} mutations, ${accepted} accepted, ${ITERATIONS - accepted} rejected, ${seconds.toFixed(1)} s`);
  assert.ok(accepted > ITERATIONS * 0.1 && accepted < ITERATIONS * 0.7, `a useful mix of valid and invalid files (${accepted} accepted)`);
  assert.equal(memory().tensors, tensorsBefore, "every loaded tensor was disposed");

  if (!existsSync(python)) return;
  const result = spawnSync(python, [oracle, "accepts", sampleFolder], { encoding: "utf8", maxBuffer: 1 << 26 });
  assert.equal(result.status, 0, result.stderr);
  const reference = JSON.parse(result.stdout) as Record<string, boolean>;
  const disagreements: string[] = [];
  let stricter = 0;
  for (const [name, error] of samples) {
    if (reference[name] === (error === null)) continue;
    if (reference[name] && error !== null && STRICTER.test(error.message)) {
      stricter++;
      continue;
    }
    disagreements.push(`${name}: reference ${reference[name] ? "accepts" : "rejects"}, this reader ${error === null ? "accepts" : `rejects: ${error.message}`}`);
  }
  console.log(`fuzz: ${samples.size} samples checked against the reference, ${stricter} rejected only by this stricter reader`);
  assert.deepEqual(disagreements, []);
});
