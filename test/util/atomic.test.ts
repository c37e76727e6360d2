// Atomic writes (src/util/atomic.ts) and JSON reading (src/util/json.ts): the shared plumbing every layer uses.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { writeAll, writeAtomicWith, writeDirectoryAtomic, writeFileAtomic, writeJsonAtomic } from "../../src/util/atomic.js";
import { JsonFileError, parsePythonJson, readJsonFile, readJsonObject } from "../../src/util/json.js";

const root = mkdtempSync(path.join(os.tmpdir(), "hdb-util-"));
after(() => rmSync(root, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

test("writeFileAtomic writes text and bytes, replaces an older file and leaves no temporary file", () => {
  const dir = folder("files");
  const file = path.join(dir, "a.txt");
  writeFileAtomic(file, "first ✓\n");
  assert.equal(readFileSync(file, "utf8"), "first ✓\n");
  writeFileAtomic(file, new Uint8Array([104, 105]));
  assert.equal(readFileSync(file, "utf8"), "hi");
  assert.deepEqual(readdirSync(dir), ["a.txt"]);
});

test("writeJsonAtomic writes two-space JSON with a trailing newline", () => {
  const file = path.join(folder("json"), "x.json");
  writeJsonAtomic(file, { a: [1, 2], b: "c" });
  assert.equal(readFileSync(file, "utf8"), '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "c"\n}\n');
});

test("a write that fails leaves the earlier file as it was and no temporary file", () => {
  const dir = folder("failing");
  const file = path.join(dir, "kept.bin");
  writeFileAtomic(file, "old");
  assert.throws(() => writeAtomicWith(file, (fd) => {
    writeAll(fd, new Uint8Array([1, 2, 3]));
    throw new Error("disk full (simulated)");
  }), /disk full/);
  assert.equal(readFileSync(file, "utf8"), "old");
  assert.deepEqual(readdirSync(dir), ["kept.bin"]);
  assert.throws(() => writeFileAtomic(path.join(dir, "no-such-folder", "x"), "y"), { code: "ENOENT" });
});

test("writeDirectoryAtomic fills <dir>.tmp and renames it over the old folder; a failure keeps the old one", () => {
  const parent = folder("dirs");
  const dir = path.join(parent, "checkpoint-2");
  mkdirSync(`${dir}.tmp`);
  writeFileSync(path.join(`${dir}.tmp`, "leftover"), "of a kill");
  writeDirectoryAtomic(dir, (tmp) => writeFileAtomic(path.join(tmp, "state.json"), "1"));
  assert.deepEqual(readdirSync(parent), ["checkpoint-2"]);
  assert.deepEqual(readdirSync(dir), ["state.json"]);
  assert.throws(() => writeDirectoryAtomic(dir, (tmp) => {
    writeFileAtomic(path.join(tmp, "state.json"), "2");
    throw new Error("killed (simulated)");
  }), /killed/);
  assert.deepEqual(readdirSync(parent), ["checkpoint-2"]);
  assert.equal(readFileSync(path.join(dir, "state.json"), "utf8"), "1");
});

test("readJsonFile reads Python's JSON (bare NaN, ±Infinity) and names the file in every error", () => {
  const dir = folder("read");
  const file = path.join(dir, "scheduler_config.json");
  writeFileSync(file, '{"lambda_min_clipped": -Infinity, "x": NaN, "s": "Infinity", "y": Infinity}');
  assert.deepEqual(readJsonFile(file, "config"), { lambda_min_clipped: -Infinity, x: NaN, s: "Infinity", y: Infinity });
  assert.deepEqual(parsePythonJson("[1, -Infinity]"), [1, -Infinity]);

  const missing = path.join(dir, "missing.json");
  assert.throws(() => readJsonFile(missing, "config"), (e: Error) => e instanceof JsonFileError && e.message === `config ${missing} does not exist`);
  const broken = path.join(dir, "broken.json");
  writeFileSync(broken, "{");
  assert.throws(() => readJsonFile(broken, "pipeline index"), (e: Error) => e instanceof JsonFileError && e.message.startsWith(`pipeline index ${broken} is not valid JSON: `));
  const list = path.join(dir, "list.json");
  writeFileSync(list, "[1]");
  assert.throws(() => readJsonObject(list), (e: Error) => e instanceof JsonFileError && e.message === `JSON file ${list} must hold a JSON object, found an array`);
});
