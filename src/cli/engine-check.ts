/**
 * `hdb engine-check`: fits a small MLP to a fixed random teacher network with AdamW, showing the loss falling and
 * the step time. It exercises the whole engine path a training loop uses (modules, autograd, optimiser,
 * scopes) in a few seconds on a CPU. Flags: ENGINE_CHECK_SPEC below (`hdb engine-check --help`).
 */
import { defaultDevice, getNumThreads, manualSeed, memory, noGrad, randn, setNumThreads, tidy, keep } from "../engine/index.js";
import { GELU, Linear, Sequential } from "../engine/nn/index.js";
import { AdamW, cosineSchedule } from "../engine/optim/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { printInfo } from "./info.js";
import { Progress } from "../util/progress.js";

export const ENGINE_CHECK_SPEC = defineCommand({
  name: "engine-check",
  summary: "train a small model on the engine and show the loss falling",
  usage: "[flags]",
  flags: {
    steps: { type: "integer", min: 1, default: 300, description: "AdamW steps" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
    device: { type: "string", value: "<device>", description: "cpu, cuda:0, mps, …", defaultText: "the engine's default device" },
  },
  examples: ["hdb engine-check --steps 100 --threads 2"],
});

/** `hdb engine-check` with its command-line arguments. */
export async function runEngineCheckCommand(argv: string[]): Promise<void> {
  const { values } = parseFlags(ENGINE_CHECK_SPEC, argv);
  await runEngineCheck({ steps: values.steps, threads: values.threads, device: values.device });
}

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
