// Provenance records (src/util/provenance.ts): the commit, the command as typed, and sha256 of measured files
// under repository-relative paths.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { provenance, recordedPath, repositoryRoot, sha256File } from "../../src/util/provenance.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));

test("files are hashed one by one under repository-relative paths; the command is quoted where a shell needs it", () => {
  const record = provenance({ command: ["hdb", "generate", "--prompt", "a sks face", "--out", "it's.png"], threads: 2, measured: [path.join(root, "models/miniworld/base/unet")], cwd: root });
  assert.equal(record.command, "hdb generate --prompt 'a sks face' --out 'it'\\''s.png'");
  assert.deepEqual(Object.keys(record.files), ["models/miniworld/base/unet/config.json", "models/miniworld/base/unet/diffusion_pytorch_model.safetensors"]);
  const config = path.join(root, "models/miniworld/base/unet/config.json");
  assert.equal(record.files["models/miniworld/base/unet/config.json"], createHash("sha256").update(readFileSync(config)).digest("hex"));
  assert.match(record.commit ?? "", /^[0-9a-f]{40}$/);
  assert.equal(typeof record.dirty, "boolean");
  assert.equal(record.threads, 2);
});

test("outside the repository paths stay absolute and there is no commit; a missing file is an error naming it", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hdb-provenance-"));
  mkdirSync(path.join(dir, "model"));
  writeFileSync(path.join(dir, "model", "w.bin"), "abc");
  assert.equal(repositoryRoot(dir), null);
  const record = provenance({ command: ["hdb"], threads: 1, measured: [path.join(dir, "model")], cwd: dir });
  assert.deepEqual(record.files, { [path.join(dir, "model", "w.bin")]: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" });
  assert.equal(record.commit, null);
  assert.equal(sha256File(path.join(dir, "model", "w.bin")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(recordedPath(path.join(root, "a", "b.json"), root.replace(/\/$/, "")), "a/b.json");
  assert.throws(() => provenance({ command: ["hdb"], threads: 1, measured: [path.join(dir, "nope")] }), /provenance: .*nope does not exist/);
});
