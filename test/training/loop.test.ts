// The one training loop (src/training): a tiny regression job trained straight and trained with a stop and a
// resume ends bit-identical (weights, EMA, optimiser, losses, log), several jobs per step each end where they end
// alone, a resume under other settings names the setting, the earlier layouts are refused with what to do, a
// damaged checkpoint is refused naming file and key, stale temporary files of killed writes are cleared, and a
// non-finite loss, gradient or weight stops training keeping the last good checkpoint.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { loadSafetensors, manualSeed, mseLoss, rand, randn, saveSafetensors, serializeSafetensors, tensor, tidy, zeros, type Tensor } from "../../src/engine/index.js";
import { Linear } from "../../src/engine/nn/index.js";
import { AdamW, cosineSchedule, ExponentialMovingAverage } from "../../src/engine/optim/index.js";
import { readTrainingLog, train, TrainingJob, type TrainingLoop } from "../../src/training/index.js";

const root = mkdtempSync(path.join(tmpdir(), "hdb-loop-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A job that fits y = x·Wᵀ for a fixed W, with dropout-like noise drawn from the default generator. */
class RegressionJob extends TrainingJob {
  constructor(readonly model: Linear, name: string, dir: string, readonly options2: JobSettings = {}) {
    const options = options2;
    const parameters = model.parameters();
    const optimizer = new AdamW(parameters, { lr: options.learningRate ?? 0.05 });
    const steps = options.steps ?? 20;
    super({
      name, dir, steps, seed: options.seed ?? 1, settings: { learningRate: options.learningRate ?? 0.05, steps },
      tensors: () => new Map([...model.stateDict()].map(([k, t]) => [`model.${k}`, t])),
      load: (tensors) => void model.loadStateDict(new Map([...tensors].map(([k, t]) => [k.slice("model.".length), t]))),
      parameters, optimizer, scheduler: cosineSchedule(optimizer, { warmupSteps: 2, totalSteps: steps }), maxGradNorm: 1,
      ema: new ExponentialMovingAverage(parameters, 0.9),
    });
  }

  /** One batch from this step's generator; returns the loss after its backward pass. */
  loss(): number {
    return tidy(() => {
      const x = randn([8, 3], { generator: this.generator });
      const y = x.matmul(tensor([[0.5], [-0.3], [0.2]])).add(0.1);
      // Drawn from the default generator, as dropout would: the checkpoint's RNG state makes a resume draw the same.
      // (Jobs that share a step must not draw from it: they would take each other's numbers.)
      const jitter = this.options2.shared ? 0 : rand([8, 1]).mul(0.01);
      const loss = mseLoss(this.model.forward(x).add(jitter), y);
      loss.backward();
      return loss.item();
    });
  }
}

interface JobSettings {
  steps?: number;
  seed?: number;
  learningRate?: number;
  /** Draws nothing from the default generator (for jobs that share steps). */
  shared?: boolean;
}

function newJob(name: string, dir: string, options: JobSettings = {}): RegressionJob {
  manualSeed(0);
  return new RegressionJob(new Linear(3, 1), name, dir, options);
}

const loopOf = (job: RegressionJob, extra: Partial<TrainingLoop<RegressionJob>> = {}): TrainingLoop<RegressionJob> => ({
  label: "regression", jobs: [job], checkpointEvery: 4, logFile: path.join(job.dir, "log.jsonl"), step: (jobs) => jobs.map((j) => j.loss()), ...extra,
});

function bytes(job: RegressionJob): Uint8Array[] {
  return [...job.model.parameters(), ...job.options.ema!.shadow].map((t: Tensor) => t.bytes());
}

test("a run stopped mid-way and resumed ends bit-identical to an uninterrupted one", async () => {
  const straight = newJob("fit", path.join(root, "straight"));
  assert.deepEqual(await train(loopOf(straight, { keepFinalCheckpoint: true })), { stopped: false, taken: 20 });
  assert.ok(straight.losses.at(-1)! < 0.2 * straight.losses[0]!, `the loss must fall: ${straight.losses.join(", ")}`);

  const dir = path.join(root, "resumed");
  const first = newJob("fit", dir);
  assert.deepEqual(await train(loopOf(first, { keepFinalCheckpoint: true, hooks: { stopAfterSteps: 6 } })), { stopped: true, taken: 6 });
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith("checkpoint")), ["checkpoint-4"]);
  rand([5]); // the default generator moves on, as anything else in the process would make it

  const lines: string[] = [];
  const second = newJob("fit", dir);
  await train(loopOf(second, { keepFinalCheckpoint: true, hooks: { log: (line) => lines.push(line) } }));
  assert.ok(lines.some((line) => /^fit: resuming from .*checkpoint-4 \(step 4 of 20\)$/.test(line)), lines.join("\n"));
  assert.deepEqual(second.losses, straight.losses);
  assert.deepEqual(bytes(second), bytes(straight));
  assert.equal(second.options.ema!.updates, 20);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith("checkpoint")), ["checkpoint-20"], "the final checkpoint is kept");
  const log = readTrainingLog(path.join(dir, "log.jsonl"));
  assert.deepEqual(log.steps.map((l) => l.step), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(log.steps.map((l) => l.loss), straight.losses, "for each step the last line counts");
  assert.deepEqual(log.events.map((e) => `${e.event}@${e.step}`), ["started@0", "resumed@4", "finished@20"]);

  // A finished job found again is not trained again; without keepFinalCheckpoint the checkpoints go.
  const again = newJob("fit", dir);
  assert.deepEqual(await train(loopOf(again)), { stopped: false, taken: 0 });
  assert.deepEqual(bytes(again), bytes(straight));
  assert.ok(!existsSync(dir) || readdirSync(dir).every((n) => !n.startsWith("checkpoint")));
});

test("a resume under other settings, or of another job, is refused naming what differs", async () => {
  const dir = path.join(root, "settings");
  await train(loopOf(newJob("fit", dir), { hooks: { stopAfterSteps: 5 } }));
  await assert.rejects(train(loopOf(newJob("fit", dir, { learningRate: 0.01 }))),
    /cannot resume from .*checkpoint-4: its settings differ from this run's in learningRate \(saved 0\.05, now 0\.01\)/);
  await assert.rejects(train(loopOf(newJob("other", dir))), /checkpoint-4 belongs to job 'fit' with seed 1, not 'other' with seed 1/);
  await assert.rejects(train(loopOf(newJob("fit", dir), { resume: false })), /holds a checkpoint of fit: resume it, or choose another folder/);
});

test("checkpoints in the earlier layouts are refused with what to do", async () => {
  const metric = path.join(root, "earlier-metric");
  mkdirSync(path.join(metric, "step-0000004"), { recursive: true });
  await assert.rejects(train(loopOf(newJob("fit", metric))), /step-0000004 is a checkpoint in the layout of an earlier version.*delete .* to train from the start, or finish the run with hdb at commit [0-9a-f]{7}/);
  const stage = path.join(root, "earlier-stage");
  mkdirSync(path.join(stage, "checkpoint-4"), { recursive: true });
  writeFileSync(path.join(stage, "checkpoint-4", "weights.safetensors"), "");
  writeFileSync(path.join(stage, "checkpoint-4", "state.json"), JSON.stringify({ step: 4, losses: [], seconds: 1 }));
  await assert.rejects(train(loopOf(newJob("fit", stage))), /checkpoint-4 is not a hdb-training-checkpoint\/1 checkpoint \(the earlier base-model stage layout\)/);
});

test("a non-finite loss stops training and keeps the last good checkpoint", async () => {
  const dir = path.join(root, "diverged");
  const job = newJob("fit", dir);
  await assert.rejects(train(loopOf(job, { step: (jobs) => jobs.map((j) => (j.step >= 5 ? NaN : j.loss())) })),
    /^NonFiniteStepError: fit: the loss is NaN at step 6; training stopped: the last checkpoint, .*checkpoint-4, holds finite weights, but a resume would replay the same steps: delete .*diverged and train again with a lower learning rate$/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith("checkpoint")), ["checkpoint-4"]);
});

test("a NaN gradient or an update that overflows the weights stops training though the loss was finite", async () => {
  // The gradient of step 6 made NaN after a finite loss: without the check, AdamW would make every weight NaN and the
  // checkpoint of step 8 (or the result) would hold them.
  const nanGradient = path.join(root, "nan-gradient");
  const poisoned = (jobs: readonly RegressionJob[]): number[] => jobs.map((j) => {
    const loss = j.loss();
    if (j.step >= 5) tidy(() => j.model.parameters()[0]!.grad!.mul_(NaN));
    return loss;
  });
  await assert.rejects(train(loopOf(newJob("fit", nanGradient), { step: poisoned })),
    /^NonFiniteStepError: fit: the gradient of parameter 1 of 2 \[1, 3\] became NaN or infinite at step 6 \(exploding gradients\), though the loss was finite; training stopped: the last checkpoint, .*checkpoint-4, holds finite weights/);
  assert.deepEqual(readdirSync(nanGradient).filter((n) => n.startsWith("checkpoint")), ["checkpoint-4"]);
  // Weights that the update leaves infinite (as a learning rate far too high does, from finite gradients): here the
  // bias is made infinite after a finite loss and gradient, so the optimiser's step carries it into the weights.
  const overflow = path.join(root, "overflow");
  const overflowing = (jobs: readonly RegressionJob[]): number[] => jobs.map((j) => {
    const loss = j.loss();
    if (j.step >= 2) tidy(() => j.model.parameters()[1]!.detach().add_(Infinity));
    return loss;
  });
  await assert.rejects(train(loopOf(newJob("fit", overflow), { step: overflowing })),
    /^NonFiniteStepError: fit: parameter 2 of 2 \[1\] became NaN or infinite at step 3 \(the learning rate is too high for these weights\), though the loss was finite; training stopped: no checkpoint was saved; train again with a lower learning rate$/);
  assert.equal(existsSync(overflow) ? readdirSync(overflow).filter((n) => n.startsWith("checkpoint")).length : 0, 0);
});

test("a damaged checkpoint is refused on resume naming the file and the key or tensor; stale temporary files go", async () => {
  const source = path.join(root, "damaged-source");
  await train(loopOf(newJob("fit", source), { hooks: { stopAfterSteps: 5 } }));
  let n = 0;
  /** A copy of the checkpoint of step 4 with `damage` done to it; resuming it must fail matching `message`. */
  const refused = async (damage: (folder: string) => void, message: RegExp): Promise<void> => {
    const dir = path.join(root, `damaged-${n++}`);
    cpSync(source, dir, { recursive: true });
    damage(path.join(dir, "checkpoint-4"));
    await assert.rejects(train(loopOf(newJob("fit", dir))), (error: Error) => {
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /\n/, "one line");
      return true;
    });
    assert.ok(existsSync(path.join(dir, "checkpoint-4", "state.json")), "nothing is deleted");
  };
  const editState = (edit: (state: Record<string, unknown>) => void) => (folder: string): void => {
    const file = path.join(folder, "state.json");
    const state = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    edit(state);
    writeFileSync(file, JSON.stringify(state));
  };
  await refused(editState((s) => { s["step"] = "abc"; }), /checkpoint-4\/state\.json: step must be a non-negative integer, got "abc"$/);
  await refused(editState((s) => { s["step"] = 4.5; }), /state\.json: step must be a non-negative integer, got 4\.5$/);
  await refused(editState((s) => { delete s["losses"]; }), /state\.json: losses is missing; it must be a list/);
  await refused(editState((s) => { s["losses"] = [1, 2]; }), /state\.json: losses must be one loss per step \(4 at step 4\), got "2 entries"$/);
  await refused(editState((s) => { s["seconds"] = -1; }), /state\.json: seconds must be a number of seconds ≥ 0, got -1$/);
  await refused((folder) => writeFileSync(path.join(folder, "state.json"), "{\"format\": "), /checkpoint-4 is not a complete checkpoint/);
  await refused((folder) => rmSync(path.join(folder, "optimizer.safetensors")), /checkpoint-4 has no optimizer\.safetensors: it is incomplete/);
  const rewrite = (edit: (tensors: Map<string, Tensor>) => void) => (folder: string): void => {
    const file = path.join(folder, "model.safetensors");
    const { tensors, metadata } = loadSafetensors(file);
    edit(tensors);
    saveSafetensors(file, tensors, metadata);
  };
  await refused(rewrite((t) => t.delete("model.bias")), /model\.safetensors: tensor "model\.bias" is missing; delete the checkpoint/);
  await refused(rewrite((t) => t.set("ema.0", zeros([2, 3]))), /model\.safetensors: tensor "ema\.0" is \[2, 3\], this job's is \[1, 3\]/);
  await refused(rewrite((t) => t.set("model.weight", tensor([[0.1, NaN, 0.3]]))), /model\.safetensors: tensor "model\.weight": holds NaN or infinite values/);
  await refused((folder) => writeFileSync(path.join(folder, "rng.safetensors"), serializeSafetensors(new Map([["gpu", zeros([1])]]))), /rng\.safetensors: tensor "cpu" \(the generator state\) is missing/);

  // A kill mid-write leaves `.<name>.<pid>.<hex>.tmp`: removed on start when its writer is gone, kept while it lives.
  const dir = path.join(root, "stale");
  cpSync(source, dir, { recursive: true });
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  const stale = `.state.json.${dead}.0123456789ab.tmp`;
  const live = `.state.json.${process.pid}.0123456789ab.tmp`;
  for (const name of [stale, live]) writeFileSync(path.join(dir, name), "partial");
  const lines: string[] = [];
  await train(loopOf(newJob("fit", dir), { hooks: { log: (line) => lines.push(line) } }));
  assert.ok(!existsSync(path.join(dir, stale)), "the dead writer's temporary file is removed");
  assert.ok(existsSync(path.join(dir, live)), "a live writer's temporary file is left alone");
  assert.ok(lines.some((line) => line.includes(stale) && line.includes("left by a killed write")), lines.join("\n"));
});

test("several jobs per step, made one at a time, each end where training alone ends", async () => {
  const alone = [1, 2, 3].map((seed) => newJob(`job${seed}`, path.join(root, "alone", String(seed)), { seed, steps: 4 + seed, shared: true }));
  for (const job of alone) await train(loopOf(job, { checkpointEvery: 0 }));
  const finished: string[] = [];
  const progress: number[] = [];
  async function* jobs(): AsyncGenerator<RegressionJob> {
    for (const seed of [1, 2, 3]) yield newJob(`job${seed}`, path.join(root, "together", String(seed)), { seed, steps: 4 + seed, shared: true });
  }
  const together: RegressionJob[] = [];
  const result = await train<RegressionJob>({
    label: "regression", jobs: jobs(), jobsPerStep: 2, totalSteps: 5 + 6 + 7, checkpointEvery: 2,
    step: (running) => running.map((j) => (together.includes(j) || together.push(j), j.loss())),
    finish: (job) => void finished.push(job.name), hooks: { progress: (p) => progress.push(p.done) },
  });
  // Steps: job1 and job2 run together; job1 ends after 5, job3 takes its place; job2 ends after 6, job3 after 5 + 7 = 12.
  assert.deepEqual(result, { stopped: false, taken: 12 });
  assert.deepEqual(finished, ["job1", "job2", "job3"]);
  assert.equal(progress.at(-1), 18);
  for (const [i, job] of together.entries()) {
    assert.deepEqual(job.losses, alone[i]!.losses, job.name);
    assert.deepEqual(bytes(job), bytes(alone[i]!), job.name);
  }
});
