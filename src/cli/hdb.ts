#!/usr/bin/env node
/**
 * hdb: the command line of hyperdreambooth.
 *
 *   hdb info            what engine this is: libtorch, devices, threads
 *   hdb generate ...    txt2img with a Stable Diffusion model (see generate.ts), optionally with LiDB/LoRA files
 *   hdb inspect <file>  what a LiDB or LoRA file is (see inspect.ts)
 *   hdb export <lidb>   a LiDB file as a diffusers or kohya LoRA file (see export.ts)
 *   hdb miniworld ...   render, describe and export the synthetic face world (see miniworld.ts)
 *   hdb train-lidb ...  DreamBooth training of LiDB adapters, one identity or many (see train.ts)
 *   hdb train-lora ...  the DreamBooth-LoRA baseline (see train.ts)
 *   hdb demo ...        the README's main job: a grid of images from the bundled mini-world model (demo.ts)
 *   hdb engine-check    trains a small MLP on the engine and shows the loss falling (engine-check.ts)
 */
import { parseArgs } from "node:util";
import { runDemo } from "./demo.js";
import { runEngineCheck } from "./engine-check.js";
import { runExport } from "./export.js";
import { runGenerate } from "./generate.js";
import { printInfo } from "./info.js";
import { runInspect } from "./inspect.js";
import { runMiniworld } from "./miniworld.js";
import { runTrain } from "./train.js";

const usage = `usage: hdb <command> [options]

commands:
  info                         engine, libtorch, devices, threads
  demo [--model <folder>] [--out out/demo] [--seed 0] [--steps 25] [--threads N]
                               images from the bundled mini-world model: PNGs, a grid, index.html, README.md
  engine-check [--steps N] [--threads N] [--device D]
                               train a small model on the engine and show the loss falling
  generate --model <folder|id> --prompt "..." --out <png|folder>
           [--negative-prompt "..."] [--steps 30] [--guidance 7.5] [--scheduler euler_a] [--karras]
           [--seed S] [--width W --height H] [--batch N] [--clip-skip N] [--device cpu|cuda:0]
           [--dtype float32|float16|bfloat16] [--variant fp16] [--allow-download]
           [--lidb <file>[:weight]]... [--lora <file>[:weight]]...
                               text-to-image with Stable Diffusion 1.x/2.x, with LiDB/LoRA adapters
  inspect <file> [--json]      what a LiDB or LoRA file is: base model, sizes, identifier, metadata
  export <lidb> --format diffusers|kohya --out <file> [--dtype float32|float16] [--model <folder|id>]
                               a LiDB file as a standard LoRA file (exact, rank r)
  miniworld render --ids 0-15 [--style pencil-sketch] [--styles a,b] [--nuisance-seeds 0-3] [--size 64] --out <folder>
  miniworld vocab --out <folder> | styles | describe --ids 0-3
                               the synthetic face world: faces, contact sheets, tokenizer files
  miniworld build [--out models/miniworld] [--work build/miniworld-work] [--threads N] [--until STAGE]
                               train the bundled base model from seeds (resumable; all flags in miniworld-build.ts)
  miniworld quality | dreambooth [--model <folder>] [--metrics <folder>] [--out <folder>]
                               measure the base model / LiDB in the world with the metric networks
  train-lidb --pretrained-model <folder|id> --output-dir <dir>
             (--instance-data-dir <folder|image> | --identities <folder|manifest.json>)
             [--max-train-steps 400] [--learning-rate 1e-3] [--identities-per-batch N] [--train-batch-size 1]
             [--with-prior-preservation --class-prompt "a face"] [--snr-gamma 5] [--random-flip 0.5]
             [--checkpointing-steps 100] [--resume-from-checkpoint latest] [--validation-prompt "a [V] face"]
             [--validation-steps N] [--seed 0] [--mixed-precision no|bf16|fp16] [--gradient-checkpointing]
                               DreamBooth on LiDB adapters (paper §4.1); all flags in src/cli/train.ts
  train-lora ...               the same for a LoRA (the DreamBooth-LoRA baseline; --rank 4, lr 1e-4)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "info":
      printInfo();
      return 0;
    case "demo":
      await runDemo(rest);
      return 0;
    case "engine-check": {
      const { values } = parseArgs({
        args: rest,
        options: { steps: { type: "string", default: "300" }, threads: { type: "string" }, device: { type: "string" } },
      });
      const steps = Number(values.steps);
      if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got '${values.steps}'`);
      const threads = values.threads === undefined ? undefined : Number(values.threads);
      if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new Error(`--threads must be a positive integer, got '${values.threads}'`);
      await runEngineCheck({ steps, threads, device: values.device });
      return 0;
    }
    case "generate":
      await runGenerate(rest);
      return 0;
    case "inspect":
      runInspect(rest);
      return 0;
    case "export":
      await runExport(rest);
      return 0;
    case "train-lidb":
    case "train-lora":
      await runTrain(command === "train-lidb" ? "lidb" : "lora", rest);
      return 0;
    case "miniworld":
      await runMiniworld(rest);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`hdb: unknown command '${command}'\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`hdb: ${error.message}\n`);
    process.exit(1);
  },
);
