/**
 * One workload of bench/contention, run in a fresh process so that the OpenMP settings under test apply from
 * the moment libtorch loads. Prints one JSON line: the workload, the threads libtorch uses, the wait policy
 * the process started with, and the seconds of each timed iteration.
 *
 *   node dist/bench/contention/workload.js <txt2img|train> <iterations> [threads]
 *
 * txt2img: 6 PNDM steps on the tiny SD1 pipeline (test/fixtures/generated/tiny_sd/sd1): thousands of small
 * operators, where idle OpenMP threads spinning between parallel regions cost the most under contention.
 * train: forward, backward and AdamW of a small transformer (bench/engine's model), larger operators.
 */
import path from "node:path";
import { getNumThreads, keep, manualSeed, randint, setNumThreads, tidy } from "../../src/engine/index.js";
import { AdamW } from "../../src/engine/optim/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { TinyTransformer } from "../../test/engine/tiny-transformer.js";
import { repoRoot, seconds } from "../harness.js";

const [workload = "txt2img", iterationsText = "5", threadsText] = process.argv.slice(2);
const iterations = Number(iterationsText);
if (threadsText !== undefined) setNumThreads(Number(threadsText));

let step: () => void;
if (workload === "txt2img") {
  const pipeline = await StableDiffusionPipeline.fromPretrained(path.join(repoRoot, "test", "fixtures", "generated", "tiny_sd", "sd1"));
  step = () => {
    const result = pipeline.generate({ prompt: "a sks face", steps: 6, seed: 0 });
    result.images.dispose();
    result.latents.dispose();
  };
} else if (workload === "train") {
  manualSeed(0);
  const model = new TinyTransformer({ vocabSize: 512, blockSize: 64, dim: 192, heads: 6, layers: 3 });
  const data = keep(randint(0, 512, [8, 65]));
  const optimizer = new AdamW(model.parameters(), { lr: 3e-4 });
  step = () => {
    tidy(() => {
      const loss = model.loss(data.slice(1, 0, -1), data.slice(1, 1));  // next-token prediction
      loss.backward();
      return loss.item();
    });
    optimizer.step();
    optimizer.zeroGrad();
  };
} else {
  throw new Error(`workload must be txt2img or train, got '${workload}'`);
}
step(); // warm-up: kernels for each shape, the allocator
const times = Array.from({ length: iterations }, () => seconds(step));
console.log(JSON.stringify({ workload, threads: getNumThreads(), waitPolicy: process.env["OMP_WAIT_POLICY"] ?? null, times }));
