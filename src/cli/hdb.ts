#!/usr/bin/env node
/**
 * hdb: the command line of hyperdreambooth (the commands: src/cli/commands.ts). `hdb --version` and
 * `hdb build-engine` run without loading the native addon, so they work before it is built (npm's install script
 * runs `hdb build-engine`) or when it is stale; every other command loads it with the commands.
 */
import { FlagError, HelpRequested } from "../util/flags.js";

async function entry(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "build-engine") {
    const { runBuildEngine } = await import("./build-engine.js");
    runBuildEngine(rest);
    return 0;
  }
  if (command === "--version") {
    const { printVersion } = await import("./version.js");
    await printVersion();
    return 0;
  }
  const { main } = await import("./commands.js");
  return main(argv);
}

entry(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.text);
      process.exit(0);
    }
    process.stderr.write(error instanceof FlagError ? `${error.message}\n` : `hdb: ${error.message}\n`);
    process.exit(1);
  },
);
