/**
 * safetensors: round trips against the reference Python package in both directions (every dtype, 0-d and
 * empty tensors, metadata, non-ASCII names), byte-identical output, load options (the NaN/Inf refusal too) and
 * atomic saves.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  allFinite, arange, fromBytes, loadSafetensors, nonFiniteNames, parseSafetensors, readSafetensorsHeader, saveSafetensors, SafetensorsError,
  serializeSafetensors, tensor, tidy, zeros, type DType, type Tensor,
} from "../../src/engine/index.js";
import { skipOutsideCI } from "../prerequisites.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const python = path.join(root, ".venv/bin/python");
const oracle = path.join(root, "test/oracle/fixtures_safetensors.py");
const noOracle = skipOutsideCI(existsSync(python) ? false : "the Python oracle (.venv) is not set up");

const FORMAT_TO_DTYPE: Record<string, DType> = {
  F32: "float32", F16: "float16", BF16: "bfloat16", F64: "float64", I64: "int64", I32: "int32",
  I16: "int16", I8: "int8", U8: "uint8", BOOL: "bool",
};
const DTYPE_TO_FORMAT = Object.fromEntries(Object.entries(FORMAT_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

interface ExpectedTensor { dtype: string; shape: number[]; hex: string; values?: number[] }
interface ExpectedFile { metadata: Record<string, string> | null; tensors: Record<string, ExpectedTensor> }

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

function runOracle(...args: string[]): string {
  const result = spawnSync(python, [oracle, ...args], { encoding: "utf8" });
  assert.equal(result.status, 0, `oracle ${args[0]} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** Deterministic bytes (mulberry32). */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

function randomTensor(dtype: DType, shape: number[], seed: number): Tensor {
  const size = { float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 }[dtype];
  const bytes = randomBytes(shape.reduce((a, b) => a * b, 1) * size, seed);
  if (dtype === "bool") bytes.forEach((b, i) => (bytes[i] = b & 1));
  return fromBytes(bytes, dtype, shape);
}

function assertMatches(tensors: Map<string, Tensor>, expected: ExpectedFile, file: string): void {
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.tensors).sort(), file);
  for (const [name, want] of Object.entries(expected.tensors)) {
    const got = tensors.get(name)!;
    assert.equal(got.dtype, FORMAT_TO_DTYPE[want.dtype], `${file} ${name} dtype`);
    assert.deepEqual(got.shape, want.shape, `${file} ${name} shape`);
    assert.equal(hex(got.bytes()), want.hex, `${file} ${name} bytes`);
    if (want.values) assert.deepEqual(Array.from(got.data() as Float32Array), want.values, `${file} ${name} values`);
  }
}

let work: string;
before(() => {
  work = mkdtempSync(path.join(tmpdir(), "safetensors-test-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe("files written by the reference Python package", { skip: noOracle }, () => {
  let folder: string;
  let expected: Record<string, ExpectedFile>;
  before(() => {
    folder = path.join(work, "from-python");
    runOracle("write", folder);
    expected = JSON.parse(readFileSync(path.join(folder, "expected.json"), "utf8")) as Record<string, ExpectedFile>;
  });

  test("load every dtype, 0-d and empty tensor, metadata and odd name bit for bit", () => {
    assert.ok(Object.keys(expected).length >= 5);
    for (const [file, want] of Object.entries(expected)) {
      const full = path.join(folder, file);
      tidy(() => {
        const loaded = loadSafetensors(full);
        assertMatches(loaded.tensors, want, file);
        assert.deepEqual(loaded.metadata, want.metadata ?? {}, `${file} metadata`);
        const parsed = parseSafetensors(readFileSync(full));
        assertMatches(parsed.tensors, want, `${file} (in memory)`);
        assert.deepEqual(parsed.metadata, loaded.metadata);
      });
    }
  });

  test("readSafetensorsHeader describes the data without loading it", () => {
    const file = path.join(folder, "dtypes.safetensors");
    const header = readSafetensorsHeader(file);
    const bytes = readFileSync(file);
    assert.equal(header.dataStart, 8 + Number(bytes.readBigUInt64LE(0)));
    assert.equal(header.dataStart % 8, 0);
    assert.equal(header.metadata["__proto__"], "kept");
    assert.equal(Object.getPrototypeOf(header.metadata), Object.prototype);
    let cursor = 0;
    for (const [name, entry] of header.entries) {
      const want = expected["dtypes.safetensors"]!.tensors[name]!;
      assert.equal(entry.dtype, FORMAT_TO_DTYPE[want.dtype]);
      assert.deepEqual(entry.shape, want.shape);
      assert.equal(entry.begin, cursor, "entries come in data order");
      assert.equal(hex(bytes.subarray(header.dataStart + entry.begin, header.dataStart + entry.end)), want.hex);
      cursor = entry.end;
    }
    assert.equal(header.dataStart + cursor, bytes.length);
  });

  test("re-serializing reference files gives the same bytes", () => {
    for (const file of ["names.safetensors", "no_metadata.safetensors", "nothing.safetensors", "only_metadata.safetensors"]) {
      const original = readFileSync(path.join(folder, file));
      tidy(() => {
        const { tensors, metadata } = parseSafetensors(original);
        const again = serializeSafetensors(tensors, expected[file]!.metadata === null ? undefined : metadata);
        assert.equal(hex(again), hex(original), file);
      });
    }
  });

  test("load options: names, dtype (floating tensors only) and device", () => {
    const file = path.join(folder, "dtypes.safetensors");
    tidy(() => {
      const names = ["I64.matrix", "BF16.scalar", "f32.values", "BOOL.empty"];
      const { tensors } = loadSafetensors(file, { names, dtype: "float64", device: "cpu" });
      assert.deepEqual([...tensors.keys()].sort(), [...names].sort());
      assert.equal(tensors.get("I64.matrix")!.dtype, "int64");
      assert.equal(tensors.get("BOOL.empty")!.dtype, "bool");
      assert.equal(tensors.get("BF16.scalar")!.dtype, "float64");
      assert.deepEqual(tensors.get("f32.values")!.toArray(), [[[0, 0.25, 0.5], [0.75, 1, 1.25]], [[1.5, 1.75, 2], [2.25, 2.5, 2.75]]]);
      const kept = loadSafetensors(file, { names: ["BF16.scalar"] }).tensors.get("BF16.scalar")!;
      assert.equal(tensors.get("BF16.scalar")!.item(), kept.item());
      assert.throws(() => loadSafetensors(file, { names: ["missing"] }), (e: unknown) =>
        e instanceof SafetensorsError && e.message.includes(file) && e.message.includes('tensor "missing": no such tensor'));
    });
  });
});

describe("files written here, read by the reference Python package", { skip: noOracle }, () => {
  function writeAndCheck(name: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): { identical: boolean } {
    const file = path.join(work, `${name}.safetensors`);
    saveSafetensors(file, tensors, metadata);
    const expectation: ExpectedFile = { metadata: metadata ?? null, tensors: {} };
    for (const [key, t] of Object.entries(tensors)) {
      expectation.tensors[key] = { dtype: DTYPE_TO_FORMAT[t.dtype], shape: [...t.shape], hex: hex(t.contiguous().bytes()) };
    }
    const expectedFile = path.join(work, `${name}.json`);
    writeFileSync(expectedFile, JSON.stringify(expectation));
    const report = JSON.parse(runOracle("check", file, expectedFile)) as { ok: boolean; identical: boolean };
    assert.equal(report.ok, true);
    assert.equal(hex(serializeSafetensors(tensors, metadata)), hex(readFileSync(file)), "serialize and save agree");
    return report;
  }

  test("every dtype, 0-d and empty tensors, non-ASCII names: same values, byte-identical file", () => {
    tidy(() => {
      const tensors: Record<string, Tensor> = {};
      let seed = 1;
      for (const dtype of Object.values(FORMAT_TO_DTYPE)) {
        tensors[`${dtype}/matrix`] = randomTensor(dtype, [4, 7], seed++);
        tensors[`${dtype}/scalar`] = randomTensor(dtype, [], seed++);
        tensors[`${dtype}/empty`] = randomTensor(dtype, [3, 0], seed++);
      }
      tensors["名前.é 🙂"] = randomTensor("float32", [2, 2], seed++);
      tensors['quote" back\\slash\n'] = randomTensor("int8", [5], seed++);
      tensors["__proto__"] = randomTensor("int64", [1], seed++);
      const report = writeAndCheck("all-dtypes", tensors, { "note ✓": "значение" });
      assert.equal(report.identical, true, "same bytes as safetensors.torch.save");
    });
  });

  test("non-contiguous and gradient-tracking tensors, several metadata keys, no tensors", () => {
    tidy(() => {
      const base = arange(0, 24, 1, { dtype: "float32" }).reshape(2, 3, 4);
      const withGrad = zeros([3], { dtype: "float64" }).requiresGrad_();
      writeAndCheck("views", { transposed: base.transpose(0, 2), sliced: base.narrow(2, 1, 2), withGrad }, { a: "1", b: "2", c: "" });
      assert.equal(writeAndCheck("nothing", {}).identical, true);
      assert.equal(writeAndCheck("metadata-only", {}, { k: "v" }).identical, true);
    });
  });

  test("a Map and a Record of the same tensors give the same file", () => {
    tidy(() => {
      const a = tensor([1, 2, 3]);
      const b = tensor([[1, 0]], { dtype: "bool" });
      assert.deepEqual(serializeSafetensors(new Map([["a", a], ["b", b]])), serializeSafetensors({ b, a }));
    });
  });
});

describe("reading paths", () => {
  test("small tensors sharing reads, tensors over the 16 MiB bounce buffer, subsets: all equal to the in-memory reader", () => {
    const file = path.join(work, "mixed.safetensors");
    tidy(() => {
      saveSafetensors(file, {
        a: arange(0, 10, 1, { dtype: "float32" }),
        big: arange(0, 5_000_000, 1, { dtype: "float32" }), // 20 MB: read in two chunks
        c: arange(0, 7, 1, { dtype: "float32" }).reshape(7, 1),
        ids: arange(0, 3, 1, { dtype: "int64" }),
        empty: zeros([0, 4], { dtype: "float32" }),
        scalar: tensor([3], { dtype: "float16" }).reshape(),
      });
      const bytes = readFileSync(file);
      for (const names of [undefined, ["a", "c"], ["c", "scalar"], ["big", "scalar", "ids"], ["empty"], []]) {
        const fromDisk = loadSafetensors(file, { names }).tensors;
        const inMemory = parseSafetensors(bytes, { names }).tensors;
        assert.deepEqual([...fromDisk.keys()], [...inMemory.keys()], String(names));
        assert.equal(fromDisk.size, names?.length ?? 6);
        for (const [name, t] of fromDisk) {
          const other = inMemory.get(name)!;
          assert.deepEqual(t.shape, other.shape, name);
          assert.equal(t.dtype, other.dtype, name);
          assert.equal(t.eq(other).all().item(), true, `${name} (${String(names)})`);
        }
      }
      const big = loadSafetensors(file, { names: ["big"] }).tensors.get("big")!;
      assert.equal(big.to("float64").sum().item(), (4_999_999 * 5_000_000) / 2);
      assert.equal(big.narrow(0, 4_194_304, 1).item(), 4_194_304, "first element of the second chunk");
    });
  });
});

describe("atomic saves", () => {
  let folder: string;
  let target: string;
  const original = Buffer.from("the previous checkpoint");
  before(() => {
    folder = path.join(work, "atomic");
    mkdirSync(folder);
    target = path.join(folder, "model.safetensors");
  });
  const reset = (): void => writeFileSync(target, original);
  const assertUntouched = (): void => {
    assert.deepEqual(readFileSync(target), original, "the earlier file is intact");
    assert.deepEqual(readdirSync(folder), ["model.safetensors"], "no temporary file is left behind");
  };

  test("a tensor that fails half-way through writing leaves the old file and no partial file", () => {
    reset();
    tidy(() => {
      const big = zeros([5_000_000], { dtype: "float32" }); // 20 MB: written (in several chunks) before the failure
      const failing = zeros([4], { dtype: "float16" }); // ordered after float32 tensors, so it fails mid-file
      Object.defineProperty(failing, "detach", { value: () => { throw new Error("device lost"); } });
      assert.throws(() => saveSafetensors(target, { big, failing }), /device lost/);
    });
    assertUntouched();
  });

  test("invalid input is refused before anything is written", () => {
    reset();
    tidy(() => {
      const t = tensor([1]);
      const disposed = tensor([2]);
      disposed.dispose();
      const cases: [Record<string, unknown>, Record<string, unknown> | undefined, RegExp][] = [
        [{ __metadata__: t }, undefined, /__metadata__ is reserved/],
        [{ x: 3 }, undefined, /tensor "x": value is not a Tensor/],
        [{ x: disposed }, undefined, /tensor "x": tensor was disposed/],
        [{ x: t }, { k: 1 }, /metadata value of key "k" is not a string/],
        [{ ["bad\ud800"]: t }, undefined, /lone UTF-16 surrogate/],
      ];
      for (const [tensors, metadata, message] of cases) {
        assert.throws(() => saveSafetensors(target, tensors as Record<string, Tensor>, metadata as Record<string, string>),
          (e: unknown) => e instanceof SafetensorsError && message.test(e.message) && e.message.includes(target), String(message));
      }
    });
    assertUntouched();
  });

  test("unwritable targets fail cleanly", () => {
    reset();
    tidy(() => {
      const t = tensor([1, 2]);
      assert.throws(() => saveSafetensors(path.join(folder, "missing-dir", "x.safetensors"), { t }), { code: "ENOENT" });
      mkdirSync(path.join(folder, "a-dir"));
      assert.throws(() => saveSafetensors(path.join(folder, "a-dir"), { t }));
      rmSync(path.join(folder, "a-dir"), { recursive: true });
    });
    assertUntouched();
  });

  test("a successful save replaces the old file", () => {
    reset();
    tidy(() => {
      saveSafetensors(target, { w: tensor([1, 2, 3]) }, { step: "2" });
      const { tensors, metadata } = loadSafetensors(target);
      assert.deepEqual(tensors.get("w")!.toArray(), [1, 2, 3]);
      assert.deepEqual(metadata, { step: "2" });
    });
    assert.deepEqual(readdirSync(folder), ["model.safetensors"]);
  });
});

test("finite: NaN and ±Inf are refused naming the file and the first tensor; a folder is named as one", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-finite-"));
  try {
    const file = path.join(dir, "weights.safetensors");
    tidy(() => saveSafetensors(file, new Map([
      ["ids", arange(4)], ["ok", tensor([1, 2])], ["empty", zeros([0])], ["half", tensor([1, Infinity]).to("float16")], ["nan", tensor([NaN])],
    ])));
    // The first in the file's data order (writers put float32 before float16), with the count.
    assert.throws(() => loadSafetensors(file, { finite: true }), (error: Error) => error instanceof SafetensorsError &&
      error.message === `${file}: tensor "nan": holds NaN or infinite values (2 of its 5 tensors do): the file is damaged or its weights diverged`);
    // 7e4 is finite in float32 and infinite in float16: the check is of what was loaded, and says so.
    tidy(() => saveSafetensors(file, new Map([["big", tensor([7e4])]])));
    assert.doesNotThrow(() => tidy(() => loadSafetensors(file, { finite: true }).tensors));
    assert.throws(() => loadSafetensors(file, { finite: true, dtype: "float16" }), /tensor "big": holds NaN or infinite values once cast from float32 to float16:/);
    tidy(() => {
      assert.deepEqual(nonFiniteNames([["a", tensor([1, NaN])], ["b", tensor([2])], ["c", tensor([-Infinity]).to("bfloat16")], ["d", arange(3)]]), ["a", "c"]);
      assert.equal(allFinite([tensor([1, 2]), zeros([0])]), true);
    });
    assert.throws(() => loadSafetensors(dir), (error: Error) => error instanceof SafetensorsError && error.message === `${dir}: is a folder, not a safetensors file`);
    assert.throws(() => readSafetensorsHeader(dir), /is a folder, not a safetensors file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
