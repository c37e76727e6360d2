/**
 * `hdb engine-check`: fits a small MLP to a fixed random teacher network with AdamW, showing the loss falling and
 * the step time. It exercises the whole engine path a training loop uses (modules, autograd, optimiser,
 * scopes) in a few seconds on a CPU.
 */
import { defaultDevice, getNumThreads, manualSeed, memory, noGrad, randn, setNumThreads, tidy, keep } from "../engine/index.js";
import { GELU, Linear, Sequential } from "../engine/nn/index.js";
import { AdamW, cosineSchedule } from "../engine/optim/index.js";
import { printInfo } from "./info.js";
import { Progress } from "./progress.js";

export interface EngineCheckOptions {
  steps: number;
  threads?: number;
  device?: string;
}

export async function runEngineCheck(options: EngineCheckOptions): Promise<void> {
  if (options.threads) setNumThreads(options.threads);
  const device = options.device ?? defaultDevice();
  printInfo();
  manualSeed(0);
  const teacher = new Sequential(new Linear(32, 128), new GELU(), new Linear(128, 8));
  const student = new Sequential(new Linear(32, 256), new GELU(), new Linear(256, 256), new GELU(), new Linear(256, 8));
  teacher.to(device);
  student.to(device);
  const inputs = keep(randn([1024, 32], { device }));
  const targets = keep(noGrad(() => teacher.forward(inputs)));
  const optimizer = new AdamW(student.parameters(), { lr: 3e-3, weightDecay: 0.01 });
  const schedule = cosineSchedule(optimizer, { warmupSteps: Math.ceil(options.steps / 20), totalSteps: options.steps });
  const progress = new Progress({ label: "engine-check", total: options.steps });
  let first = NaN;
  let last = NaN;
  const started = Date.now();
  for (let step = 0; step < options.steps; step++) {
    last = tidy(() => {
      const loss = student.forward(inputs).sub(targets).square().mean();
      loss.backward();
      return loss.item();
    });
    optimizer.step();
    optimizer.zeroGrad();
    schedule.step();
    if (step === 0) first = last;
    progress.tick(1, `loss ${last.toFixed(5)}`);
    if (step % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const msPerStep = (Date.now() - started) / options.steps;
  console.log(`loss ${first.toFixed(5)} -> ${last.toFixed(5)} in ${options.steps} steps, ${msPerStep.toFixed(2)} ms/step, ` +
    `${getNumThreads()} threads on ${device}; live tensors ${memory().tensors}`);
  if (!(last < first)) throw new Error(`the engine check's loss did not fall (${first} -> ${last}): the engine is broken on this machine`);
}
