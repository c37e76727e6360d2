/**
 * safetensors: malformed input. Every problem gives a SafetensorsError that names the file, the tensor
 * when one is at fault, and the problem; the reference Python package is asked to confirm that it rejects
 * the same inputs (or accepts them, for the few documented places where this reader is stricter).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors, parseSafetensors, readSafetensorsHeader, SafetensorsError } from "../../src/engine/index.js";
import { skipOutsideCI } from "../prerequisites.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const python = path.join(root, ".venv/bin/python");
const oracle = path.join(root, "test/oracle/fixtures_safetensors.py");
const noOracle = skipOutsideCI(existsSync(python) ? false : "the Python oracle (.venv) is not set up");

/** A file: 8-byte little-endian header length, the header text (space-padded unless pad is false), data. */
function file(header: string | object, data: number | Uint8Array = 0, options: { pad?: boolean; length?: bigint } = {}): Uint8Array {
  // A string header is taken byte for byte (latin1), so tests can put invalid UTF-8 in it.
  let text = typeof header === "string" ? Buffer.from(header, "latin1") : Buffer.from(JSON.stringify(header), "utf8");
  if (options.pad ?? true) text = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(options.length ?? BigInt(text.length));
  const body = typeof data === "number" ? Buffer.alloc(data, 7) : Buffer.from(data);
  return new Uint8Array(Buffer.concat([prefix, text, body]));
}
const f32 = (begin: number, end: number, shape: unknown = [(end - begin) / 4]): object => ({ dtype: "F32", shape, data_offsets: [begin, end] });
const raw = (text: string, data = 0): Uint8Array => file(Buffer.from(text, "utf8").toString("latin1"), data);

interface Case {
  what: string;
  bytes: Uint8Array;
  message: RegExp;
  /** The tensor the error must name. */
  tensor?: string;
  /** What the reference package does with the same bytes ("accepts" marks where this reader is stricter). */
  reference: "rejects" | "accepts";
}

const cases: Case[] = [
  { what: "empty file", bytes: new Uint8Array(0), message: /0 bytes long, shorter than the 8-byte header length prefix/, reference: "rejects" },
  { what: "file shorter than 8 bytes", bytes: new Uint8Array([1, 0, 0]), message: /3 bytes long, shorter than the 8-byte/, reference: "rejects" },
  { what: "header length beyond the file", bytes: file("{}", 0, { length: 100n }), message: /header length 100 runs past the end of the input \(16 bytes\)/, reference: "rejects" },
  { what: "header length over 100 MB", bytes: file("{}", 0, { length: 100_000_001n }), message: /header length 100000001 is over the 100000000-byte limit/, reference: "rejects" },
  { what: "header length 2^64-1", bytes: file("{}", 0, { length: 2n ** 64n - 1n }), message: /header length 18446744073709551615 is over/, reference: "rejects" },
  { what: "header length 0", bytes: file("", 0, { length: 0n }), message: /header is not valid JSON: unexpected end of JSON/, reference: "rejects" },
  { what: "header not UTF-8", bytes: file('{"\xff":1}'), message: /header is not valid UTF-8/, reference: "rejects" },
  { what: "header not JSON", bytes: raw('{"a": '), message: /header is not valid JSON/, reference: "rejects" },
  { what: "junk after the JSON", bytes: raw('{}x'), message: /header is not valid JSON: unexpected characters after the JSON value/, reference: "rejects" },
  { what: "NUL padding", bytes: file("{}\0\0\0\0\0\0", 0, { pad: false }), message: /header is not valid JSON/, reference: "rejects" },
  { what: "byte-order mark", bytes: raw("\ufeff{}"), message: /header is not valid JSON/, reference: "rejects" },
  { what: "control character in a string", bytes: raw('{"__metadata__":{"a\u0001":"b"}}'), message: /control character in a string/, reference: "rejects" },
  { what: "lone surrogate escape", bytes: raw('{"__metadata__":{"\\ud800":"b"}}'), message: /surrogate/, reference: "rejects" },
  { what: "nesting deeper than 128", bytes: raw(`{"__x":${"[".repeat(200)}${"]".repeat(200)}}`), message: /nested deeper than 128 levels/, reference: "rejects" },
  { what: "header is a list", bytes: raw("[]"), message: /header is not a JSON object/, reference: "rejects" },
  { what: "header is null", bytes: raw("null"), message: /header is not a JSON object/, reference: "rejects" },
  { what: "entry not an object", bytes: file({ a: 5 }), message: /entry is not an object with dtype, shape and data_offsets/, tensor: "a", reference: "rejects" },
  { what: "unknown dtype", bytes: file({ a: { dtype: "X9", shape: [1], data_offsets: [0, 4] } }, 4), message: /unknown dtype "X9"/, tensor: "a", reference: "rejects" },
  { what: "lower-case dtype", bytes: file({ a: { dtype: "f32", shape: [1], data_offsets: [0, 4] } }, 4), message: /unknown dtype "f32"/, tensor: "a", reference: "rejects" },
  { what: "dtype not a string", bytes: file({ a: { dtype: null, shape: [1], data_offsets: [0, 4] } }, 4), message: /dtype is not a string/, tensor: "a", reference: "rejects" },
  { what: "dtype this engine lacks", bytes: file({ a: { dtype: "U16", shape: [2], data_offsets: [0, 4] } }, 4), message: /dtype U16 is not supported by this engine/, tensor: "a", reference: "accepts" },
  { what: "missing dtype", bytes: file({ a: { shape: [1], data_offsets: [0, 4] } }, 4), message: /missing field dtype/, tensor: "a", reference: "rejects" },
  { what: "missing shape", bytes: file({ a: { dtype: "F32", data_offsets: [0, 4] } }, 4), message: /missing field shape/, tensor: "a", reference: "rejects" },
  { what: "missing data_offsets", bytes: file({ a: { dtype: "F32", shape: [1] } }, 4), message: /missing field data_offsets/, tensor: "a", reference: "rejects" },
  { what: "shape not a list", bytes: file({ a: f32(0, 4, "1") }, 4), message: /shape is not a list of non-negative integers/, tensor: "a", reference: "rejects" },
  { what: "negative size", bytes: file({ a: f32(0, 4, [-1]) }, 4), message: /shape is not a list of non-negative integers \(found -1\)/, tensor: "a", reference: "rejects" },
  { what: "size written 1.0", bytes: raw('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', 4), message: /found 1\.0/, tensor: "a", reference: "rejects" },
  { what: "size written 1e0", bytes: raw('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', 4), message: /found 1e0/, tensor: "a", reference: "rejects" },
  { what: "size written -0", bytes: raw('{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}'), message: /found -0/, tensor: "a", reference: "rejects" },
  { what: "size null", bytes: file({ a: f32(0, 4, [null]) }, 4), message: /found null/, tensor: "a", reference: "rejects" },
  { what: "size past 2^64", bytes: raw('{"a":{"dtype":"F32","shape":[18446744073709551616,0],"data_offsets":[0,0]}}'), message: /shape value 18446744073709551616 is too large/, tensor: "a", reference: "rejects" },
  { what: "element count overflows", bytes: raw('{"a":{"dtype":"F32","shape":[4294967296,4294967296,1],"data_offsets":[0,4]}}', 4), message: /shape \[4294967296, 4294967296, 1\] is too large/, tensor: "a", reference: "rejects" },
  { what: "empty tensor with a size past 2^53", bytes: raw('{"a":{"dtype":"F32","shape":[1152921504606846976,0],"data_offsets":[0,0]}}'), message: /shape value 1152921504606846976 is too large/, tensor: "a", reference: "accepts" },
  { what: "data_offsets with 3 items", bytes: file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4, 4] } }, 4), message: /data_offsets has 3 items, expected \[begin, end\]/, tensor: "a", reference: "rejects" },
  { what: "data_offsets not a list", bytes: file({ a: { dtype: "F32", shape: [1], data_offsets: "0-4" } }, 4), message: /data_offsets is not a list of non-negative integers/, tensor: "a", reference: "rejects" },
  { what: "negative offset", bytes: file({ a: f32(-4, 0, [1]) }, 4), message: /data_offsets is not a list of non-negative integers \(found -4\)/, tensor: "a", reference: "rejects" },
  { what: "fractional offset", bytes: raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', 4), message: /found 4\.0/, tensor: "a", reference: "rejects" },
  { what: "end before begin", bytes: file({ a: f32(4, 0, [1]) }, 4), message: /data_offsets \[4, 0\] end before begin/, tensor: "a", reference: "rejects" },
  { what: "offsets past the data", bytes: file({ a: f32(0, 8) }, 4), message: /data_offsets \[0, 8\] run past the end of the data area \(4 bytes\)/, tensor: "a", reference: "rejects" },
  { what: "huge offset", bytes: raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551620]}}', 4), message: /data_offsets value 18446744073709551620 is too large/, tensor: "a", reference: "rejects" },
  { what: "overlapping tensors", bytes: file({ a: f32(0, 8), b: f32(4, 12) }, 12), message: /data_offsets \[4, 12\] overlap tensor "a"/, tensor: "b", reference: "rejects" },
  { what: "gap between tensors", bytes: file({ a: f32(0, 4), b: f32(8, 12) }, 12), message: /leave a gap: data bytes 4\.\.8 belong to no tensor/, tensor: "b", reference: "rejects" },
  { what: "gap at the start", bytes: file({ a: f32(4, 8) }, 8), message: /leave a gap: data bytes 0\.\.4 belong to no tensor/, tensor: "a", reference: "rejects" },
  { what: "bytes after the last tensor", bytes: file({ a: f32(0, 4) }, 8), message: /tensors cover 4 of the 8 data bytes; the rest belongs to no tensor/, reference: "rejects" },
  { what: "data for a header with no tensors", bytes: file({}, 8), message: /tensors cover 0 of the 8 data bytes/, reference: "rejects" },
  { what: "span larger than shape x dtype", bytes: file({ a: f32(0, 8, [1]) }, 8), message: /shape \[1\] of F32 needs 4 bytes but data_offsets \[0, 8\] span 8/, tensor: "a", reference: "rejects" },
  { what: "span smaller than shape x dtype", bytes: file({ a: { dtype: "F64", shape: [2, 2], data_offsets: [0, 16] } }, 16), message: /shape \[2, 2\] of F64 needs 32 bytes but data_offsets \[0, 16\] span 16/, tensor: "a", reference: "rejects" },
  { what: "duplicate tensor name, different data", bytes: raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), message: /duplicate key "a"/, reference: "rejects" },
  { what: "duplicate tensor name, same entry", bytes: raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), message: /duplicate key "a"/, reference: "accepts" },
  { what: "duplicate name through an escape", bytes: raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), message: /duplicate key "a"/, reference: "rejects" },
  { what: "duplicate field in an entry", bytes: raw('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), message: /duplicate key "dtype"/, reference: "rejects" },
  { what: "duplicate metadata key", bytes: raw('{"__metadata__":{"k":"1","k":"2"}}'), message: /duplicate key "k"/, reference: "accepts" },
  { what: "metadata value not a string", bytes: file({ __metadata__: { k: 1 } }), message: /__metadata__ value of key "k" is not a string/, reference: "rejects" },
  { what: "metadata not an object", bytes: file({ __metadata__: ["k"] }), message: /__metadata__ is not an object of strings/, reference: "rejects" },
];

let work: string;
before(() => {
  work = mkdtempSync(path.join(tmpdir(), "safetensors-bad-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs parse (in memory), load and readSafetensorsHeader (from a file); returns the errors, or null if accepted. */
function outcomes(bytes: Uint8Array, filePath: string | null): { parse: unknown; load: unknown; header: unknown } {
  const attempt = (fn: () => void): unknown => {
    try {
      fn();
      return null;
    } catch (error) {
      return error;
    }
  };
  const dispose = (loaded: { tensors: Map<string, { dispose(): void }> }): void => loaded.tensors.forEach((t) => t.dispose());
  const parse = attempt(() => dispose(parseSafetensors(bytes)));
  if (filePath === null) return { parse, load: parse, header: parse };
  writeFileSync(filePath, bytes);
  return { parse, load: attempt(() => dispose(loadSafetensors(filePath))), header: attempt(() => readSafetensorsHeader(filePath)) };
}

describe("malformed files", () => {
  for (const [index, c] of cases.entries()) {
    test(c.what, () => {
      const filePath = path.join(work, `case-${index}.safetensors`);
      const { parse, load, header } = outcomes(c.bytes, filePath);
      for (const [how, error, source] of [["parse", parse, "safetensors bytes"], ["load", load, filePath], ["header", header, filePath]] as const) {
        assert.ok(error instanceof SafetensorsError, `${how}: expected a SafetensorsError, got ${String(error)}`);
        assert.match(error.message, c.message, how);
        assert.ok(error.message.startsWith(`${source}: `), `${how}: "${error.message}" names ${source}`);
        assert.equal(error.source, source);
        if (c.tensor !== undefined) {
          assert.equal(error.tensor, c.tensor, how);
          assert.ok(error.message.includes(`tensor ${JSON.stringify(c.tensor)}: `), `${how}: "${error.message}" names the tensor`);
        }
      }
    });
  }

  test("the reference package agrees (rejects, or accepts where this reader is deliberately stricter)", { skip: noOracle }, () => {
    const folder = path.join(work, "reference-cases");
    mkdirSync(folder);
    cases.forEach((c, i) => writeFileSync(path.join(folder, `${String(i).padStart(3, "0")}.st`), c.bytes));
    const result = spawnSync(python, [oracle, "accepts", folder], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    const accepted = JSON.parse(result.stdout) as Record<string, boolean>;
    const disagreements = cases.filter((c, i) => accepted[`${String(i).padStart(3, "0")}.st`] !== (c.reference === "accepts"));
    assert.deepEqual(disagreements.map((c) => c.what), []);
  });
});
