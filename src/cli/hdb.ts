#!/usr/bin/env node
/**
 * hdb: the command line of hyperdreambooth.
 *
 *   hdb info            what engine this is: libtorch, devices, threads
 *   hdb generate ...    txt2img with a Stable Diffusion model (see generate.ts)
 *   hdb demo [--steps N] [--threads N]
 *                       trains a small model on the engine and shows the loss falling (the README's main
 *                       job until the bundled mini-world model exists)
 */
import { parseArgs } from "node:util";
import { runDemo } from "./demo.js";
import { runGenerate } from "./generate.js";
import { printInfo } from "./info.js";

const usage = `usage: hdb <command> [options]

commands:
  info                         engine, libtorch, devices, threads
  demo [--steps N] [--threads N] [--device D]
                               train a small model on the engine and show the loss falling
  generate --model <folder|id> --prompt "..." --out <png|folder>
           [--negative-prompt "..."] [--steps 30] [--guidance 7.5] [--scheduler euler_a] [--karras]
           [--seed S] [--width W --height H] [--batch N] [--clip-skip N] [--device cpu|cuda:0]
           [--dtype float32|float16|bfloat16] [--variant fp16] [--allow-download]
                               text-to-image with Stable Diffusion 1.x/2.x
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "info":
      printInfo();
      return 0;
    case "demo": {
      const { values } = parseArgs({
        args: rest,
        options: { steps: { type: "string", default: "300" }, threads: { type: "string" }, device: { type: "string" } },
      });
      const steps = Number(values.steps);
      if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got '${values.steps}'`);
      const threads = values.threads === undefined ? undefined : Number(values.threads);
      if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new Error(`--threads must be a positive integer, got '${values.threads}'`);
      await runDemo({ steps, threads, device: values.device });
      return 0;
    }
    case "generate":
      await runGenerate(rest);
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
