// libtorch discovery and the loader's refusal to run against a libtorch other than the one built for.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { findLibtorch } from "../../src/engine/native/libtorch.js";

const engineEntry = fileURLToPath(new URL("../../src/engine/index.js", import.meta.url));

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

test("without LIBTORCH, the .venv torch is found with its version and ABI", () => {
  const found = withEnv("LIBTORCH", undefined, findLibtorch);
  assert.equal(found.source, ".venv");
  assert.match(found.version, /^2\.13\.0/);
  assert.equal(found.cxx11Abi, true);
});

test("LIBTORCH pointing at a folder without libtorch is a clear error naming the folder", () => {
  const empty = mkdtempSync(path.join(tmpdir(), "no-libtorch-"));
  assert.throws(() => withEnv("LIBTORCH", empty, findLibtorch), (error: Error) => {
    assert.match(error.message, /incomplete/);
    assert.ok(error.message.includes(empty));
    return true;
  });
});

test("the loader refuses an addon built against another libtorch than LIBTORCH names", () => {
  const other = mkdtempSync(path.join(tmpdir(), "other-libtorch-"));
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(engineEntry)})`], {
    env: { ...process.env, LIBTORCH: other }, encoding: "utf8", timeout: 60_000,
  });
  assert.notEqual(child.status, 0);
  assert.match(child.stderr, /built against libtorch at .* but LIBTORCH=/);
  assert.match(child.stderr, /Rebuild/);
});
