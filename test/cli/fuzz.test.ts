// Hostile input through the real `hdb` (issue 14): seeded random cases of each class the issue names, NaN/Inf in
// adapter files, sizes and batches past memory, seeds outside PyTorch's range, an export onto its own input, and
// damaged training checkpoints. Every case must exit non-zero with one line on stderr that names the problem (no
// stack trace), and lose nothing: every input file keeps its bytes and no output appears. The counts per class are
// reported (t.diagnostic). File-level fuzzing of safetensors itself is test/engine/safetensors-fuzz.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { exportLidbFile } from "../../src/adapters/index.js";
import { cat, loadSafetensors, saveSafetensors, setNumThreads, tensor, tidy, zeros } from "../../src/engine/index.js";
import { hash32 } from "../../src/util/hash.js";
import { writeFacePhotos } from "../dreambooth/helpers.js";
import { sd1, snapshot, writeTinyLidb } from "./hostile-inputs.js";

setNumThreads(1);
const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), "hdb-fuzz-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Cases per class; each is one `hdb` process (the model-loading ones take about a second at one thread). */
const CASES = { nonFinite: 8, oversize: 6, seed: 10, outputIsInput: 6, checkpoint: 10 } as const;

/** Deterministic draws: case i of a class draws from hash32(class, i, k). */
function draws(kind: number, index: number): { int: (n: number) => number; pick: <T>(items: readonly T[]) => T } {
  let k = 0;
  const int = (n: number): number => hash32(kind, index, k++) % n;
  return { int, pick: (items) => items[int(items.length)]! };
}


/** Runs `hdb args`: it must exit 1 with one line on stderr matching `message`, and leave `work` as it was. */
function refused(args: string[], message: RegExp): void {
  const before = snapshot(work);
  const child = spawnSync(process.execPath, [hdb, ...args], {
    encoding: "utf8", timeout: 120_000, env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" },
  });
  const shown = `hdb ${args.join(" ")}\n${child.stderr}`;
  assert.equal(child.status, 1, shown);
  const lines = child.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `one line: ${shown}`);
  assert.match(lines[0]!, /^hdb: /, shown);
  assert.doesNotMatch(lines[0]!, /\bat .*\.js:\d+/, `no stack trace: ${shown}`);
  assert.match(lines[0]!, message, shown);
  const after = snapshot(work);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `no file appeared or went: ${shown}`);
  for (const [file, bytes] of before) assert.equal(after.get(file), bytes, `${file} kept its bytes: ${shown}`);
}

/** A copy of a safetensors file with `value` written at a random element of a random floating tensor. */
function poisoned(file: string, out: string, value: number, r: ReturnType<typeof draws>): string {
  const { tensors, metadata } = loadSafetensors(file);
  const name = r.pick([...tensors.keys()].filter((key) => tensors.get(key)!.dtype.startsWith("float") && tensors.get(key)!.numel > 1));
  tidy(() => {
    const original = tensors.get(name)!;
    const flat = original.float().flatten();
    const at = r.int(flat.shape[0]!);
    const parts = [flat.narrow(0, 0, at), tensor([value]), flat.narrow(0, at + 1, flat.shape[0]! - at - 1)];
    tensors.set(name, cat(parts).reshape(...original.shape).to(original.dtype));
    saveSafetensors(out, tensors, metadata);
  });
  for (const t of tensors.values()) t.dispose();
  return name;
}

const lidb = path.join(work, "face.lidb.safetensors");
const lora = path.join(work, "face.lora.safetensors");
const photos = path.join(work, "photos");
const run = path.join(work, "run");

/** The inputs every class mutates: a LiDB file and its LoRA export for the tiny pipeline, a run with a checkpoint. */
async function setUp(): Promise<void> {
  await writeTinyLidb(lidb);
  exportLidbFile(lidb, lora, { format: "kohya" });
  await writeFacePhotos(photos, 0);
  // A run that diverges at step 2 keeps the checkpoint of step 1 (finite weights): the checkpoint the class damages.
  const child = spawnSync(process.execPath, [hdb, ...trainArgs()], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" } });
  assert.match(child.stderr, /the loss is NaN at step 2/);
}
const trainArgs = (): string[] => ["train-lidb", "--pretrained-model", sd1, "--instance-data-dir", photos, "--output-dir", run,
  "--lidb-a", "16", "--lidb-b", "16", "--max-train-steps", "4", "--checkpointing-steps", "1", "--learning-rate", "1e30", "--resume-from-checkpoint", "latest"];

test("hostile input: every case fails with one line and loses nothing", async (t) => {
  await setUp();
  const counts: Record<string, number> = {};
  const count = (kind: string): void => void (counts[kind] = (counts[kind] ?? 0) + 1);
  const generate = ["generate", "--model", sd1, "--prompt", "a sks face", "--steps", "2", "--seed", "0"];
  const never = path.join(work, "never.png");

  for (let i = 0; i < CASES.nonFinite; i++) {
    const r = draws(1, i);
    const value = r.pick([NaN, Infinity, -Infinity]);
    const [source, flag] = r.pick([[lidb, "--lidb"], [lora, "--lora"]] as const);
    const bad = path.join(work, `bad-${i}.safetensors`);
    const name = poisoned(source, bad, value, r);
    const where = new RegExp(`bad-${i}\\.safetensors: tensor ${JSON.stringify(name).replace(/[.[\]]/g, "\\$&")}: holds NaN or infinite values`);
    if (flag === "--lidb" && r.int(2) === 0) refused(["export", bad, "--format", r.pick(["kohya", "diffusers"]), "--out", path.join(work, "never.safetensors")], where);
    else refused([...generate, flag, `${bad}:${r.pick(["1", "0.5", "-1"])}`, "--out", never], where);
    rmSync(bad);
    count("non-finite tensors");
  }

  for (let i = 0; i < CASES.oversize; i++) {
    const r = draws(2, i);
    const side = (): string => String(8 * (4096 + r.int(60000)));
    const ask = r.pick([
      ["--width", side(), "--height", side()], ["--batch", String(1_000_000 + r.int(1_000_000))], ["--width", side(), "--batch", String(4096 + r.int(4096))],
    ]);
    refused([...generate, ...ask, "--out", path.join(work, "never")], /needs about [\d.]+ GiB for generation \(an estimate\), more than the [\d.]+ GiB free now/);
    count("oversize requests");
  }

  for (let i = 0; i < CASES.seed; i++) {
    const r = draws(3, i);
    const big = (2n ** 64n + BigInt(r.int(2 ** 30)) * BigInt(1 + r.int(2 ** 30))).toString();
    const seed = r.pick([big, `-${big}`, (-(2n ** 63n) - 1n - BigInt(r.int(1000))).toString(), `${r.int(100)}.5`, `1e${1 + r.int(30)}`, "0x10", "seven"]);
    refused([...generate, "--seed", seed, "--out", never], /--seed must be an integer in \[-9223372036854775808, 18446744073709551615\] \(PyTorch's manual_seed range\)/);
    count("seeds out of range");
  }

  const relative = path.relative(process.cwd(), lidb);
  for (let i = 0; i < CASES.outputIsInput; i++) {
    const r = draws(4, i);
    const alias = r.pick(["same", "relative", "dotted", "symlink", "hardlink"] as const);
    const out = alias === "same" ? lidb : alias === "relative" ? relative : alias === "dotted" ? path.join(work, ".", "photos", "..", "face.lidb.safetensors")
      : path.join(work, `${alias}-${i}.safetensors`);
    if (alias === "symlink") symlinkSync(lidb, out);
    if (alias === "hardlink") linkSync(lidb, out);
    refused(["export", lidb, "--format", r.pick(["kohya", "diffusers"]), "--out", out, ...(r.int(2) === 0 ? ["--force"] : [])],
      /is the input file .*: the LoRA would replace the LiDB it is made from/);
    if (alias === "symlink" || alias === "hardlink") rmSync(out);
    count("output = input");
  }

  const checkpoint = path.join(run, "checkpoints", "photos", "checkpoint-1");
  const pristine = snapshot(checkpoint);
  for (let i = 0; i < CASES.checkpoint; i++) {
    const r = draws(5, i);
    const damage = r.pick(["state", "state", "tensor", "rng", "missing file"] as const);
    if (damage === "state") {
      const file = path.join(checkpoint, "state.json");
      const state = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
      const key = r.pick(["step", "seed", "losses", "seconds", "job", "settings"]);
      // Each value is wrong for every key (a positive number would be a valid "seconds", and resume).
      const value = r.pick(["abc", -1, -2.5, null, [], "delete"]);
      if (value === "delete") delete state[key];
      else state[key] = key === "losses" && Array.isArray(value) ? [NaN] : value;
      writeFileSync(file, JSON.stringify(state));
    } else if (damage === "tensor") {
      const file = path.join(checkpoint, "model.safetensors");
      const { tensors, metadata } = loadSafetensors(file);
      const name = r.pick([...tensors.keys()]);
      const how = r.pick(["drop", "reshape", "nan"] as const);
      if (how === "drop") tensors.delete(name);
      else if (how === "reshape") tensors.set(name, zeros([tensors.get(name)!.numel + 1]));
      else poisoned(file, file, NaN, r);
      if (how !== "nan") saveSafetensors(file, tensors, metadata);
      for (const t of tensors.values()) t.dispose();
    } else if (damage === "rng") {
      saveSafetensors(path.join(checkpoint, "rng.safetensors"), new Map([["cuda", zeros([4], { dtype: "uint8" })]]));
    } else {
      rmSync(path.join(checkpoint, r.pick(["model.safetensors", "optimizer.safetensors", "rng.safetensors"])));
    }
    refused(trainArgs(), /checkpoint-1|state\.json|checkpoints\/photos/);
    // Restored for the next case (what the case damaged, not what the refusal might have changed: nothing).
    for (const [file, bytes] of pristine) writeFileSync(file, Buffer.from(bytes, "base64"));
    count(`damaged checkpoints`);
  }
  assert.ok(!existsSync(never));
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  t.diagnostic(`${total} hostile cases, each one line and nothing lost: ${Object.entries(counts).map(([kind, n]) => `${kind} ${n}`).join(", ")}`);
  assert.equal(total, Object.values(CASES).reduce((a, b) => a + b, 0));
});
