// The job of test/training/distributed.test.ts, shared by the test (one process) and its worker (each rank): a Linear
// regression on the training loop with AdamW, a cosine schedule, clipping and an EMA, whose step computes its shard of
// a global batch of 8 drawn alike on every rank from the job's per-step generator.
import { manualSeed, mseLoss, randn, tensor, tidy, type ProcessGroup } from "../../src/engine/index.js";
import { Linear } from "../../src/engine/nn/index.js";
import { AdamW, cosineSchedule, ExponentialMovingAverage } from "../../src/engine/optim/index.js";
import { shardRange, TrainingJob, type Shard, type TrainingLoop } from "../../src/training/index.js";

export const GLOBAL_BATCH = 8;
export const STEPS = 20;

export class RegressionJob extends TrainingJob {
  constructor(readonly model: Linear, dir: string) {
    const parameters = model.parameters();
    const optimizer = new AdamW(parameters, { lr: 0.05 });
    super({
      name: "fit", dir, steps: STEPS, seed: 1, settings: { learningRate: 0.05, globalBatch: GLOBAL_BATCH },
      tensors: () => new Map([...model.stateDict()].map(([k, t]) => [`model.${k}`, t])),
      load: (tensors) => void model.loadStateDict(new Map([...tensors].map(([k, t]) => [k.slice("model.".length), t]))),
      parameters, optimizer, scheduler: cosineSchedule(optimizer, { warmupSteps: 2, totalSteps: STEPS }), maxGradNorm: 1,
      ema: new ExponentialMovingAverage(parameters, 0.9),
    });
  }

  /** This step's global batch drawn whole from the job's generator (alike on every rank); the loss of the shard's rows. */
  loss(shard: Shard): number {
    return tidy(() => {
      const x = randn([GLOBAL_BATCH, 3], { generator: this.generator });
      const [start, end] = shardRange(GLOBAL_BATCH, shard);
      const rows = x.narrow(0, start, end - start);
      const y = rows.matmul(tensor([[0.5], [-0.3], [0.2]])).add(0.1);
      const loss = mseLoss(this.model.forward(rows), y);
      loss.backward();
      return loss.item();
    });
  }

  /** Weights, EMA weights and losses, as JSON. */
  result(): { parameters: unknown[]; ema: unknown[]; losses: number[] } {
    return { parameters: this.model.parameters().map((p) => p.toArray()), ema: this.options.ema!.shadow.map((t) => t.toArray()), losses: this.losses };
  }
}

/** The job with its weights initialised from `initSeed` (each rank its own: the loop starts them all from rank 0's). */
export function newJob(dir: string, initSeed = 0): RegressionJob {
  manualSeed(initSeed);
  return new RegressionJob(new Linear(3, 1), dir);
}

export function loopOf(job: RegressionJob, distributed?: ProcessGroup, extra: Partial<TrainingLoop<RegressionJob>> = {}): TrainingLoop<RegressionJob> {
  return {
    label: "regression", jobs: [job], checkpointEvery: 4, keepFinalCheckpoint: true, logFile: `${job.dir}/log.jsonl`,
    step: (jobs, shard) => jobs.map((j) => j.loss(shard)), ...(distributed ? { distributed } : {}), ...extra,
  };
}
