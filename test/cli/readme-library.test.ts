// The README's library example (issue 16: the library mirrors the CLI), run as it stands: the block after the
// "library example" marker, with "hyperdreambooth" resolved to this checkout's build, in an empty folder. It must
// write the personalised file (with its rank-relaxed part), the image and the standard LoRA of rank 1 + r.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { loadSafetensors } from "../../src/engine/index.js";
import { temporaryDir } from "../dreambooth/helpers.js";
import { readmeExample } from "../readme.js";

const library = fileURLToPath(new URL("../../src/index.js", import.meta.url));

test("the README's library example runs: personalize, generate, exportLora on the bundled model", { timeout: 300_000 }, () => {
  const code = readmeExample("library example");
  assert.match(code, /from "hyperdreambooth"/);
  const dir = temporaryDir("readme-library");
  const script = path.join(dir, "example.mjs");
  writeFileSync(script, code.replace(/from "hyperdreambooth"/, `from ${JSON.stringify(pathToFileURL(library).href)}`));
  const child = spawnSync(process.execPath, [script], { cwd: dir, encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /^personalised in [\d.]+ s \(fine-tuning [\d.]+ s\), \d+ bytes$/m);
  const info = readLidbFileInfo(path.join(dir, "person.lidb.safetensors"));
  assert.ok(info.relaxed, "the personalised file holds the rank-relaxed part");
  assert.ok(existsSync(path.join(dir, "sketch.png")));
  const lora = loadSafetensors(path.join(dir, "person.kohya.safetensors"));
  const ranks = new Set([...lora.tensors.entries()].filter(([k]) => k.endsWith("lora_down.weight")).map(([, t]) => t.shape[0]));
  for (const t of lora.tensors.values()) t.dispose();
  assert.deepEqual([...ranks], [info.dims.rank + info.relaxed.rank], "one LoRA of rank 1 + r");
});
