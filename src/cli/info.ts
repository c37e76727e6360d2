/** `hdb info`: the engine's build and runtime facts. */
import { buildInfo, defaultDevice, devices, getNumThreads } from "../engine/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { availableDevices } from "./version.js";

export const INFO_SPEC = defineCommand({
  name: "info",
  summary: "what engine this is: libtorch, devices, threads",
  usage: "",
  flags: {},
  examples: ["hdb info"],
});

/** `hdb info` with its command-line arguments (none but --help). */
export function runInfo(argv: string[]): void {
  parseFlags(INFO_SPEC, argv);
  printInfo();
}

export function printInfo(): void {
  const build = buildInfo();
  const found = devices();
  console.log(`libtorch     ${build.torchVersion} (${build.libtorchDir})`);
  console.log(`loaded       ${build.loadedLibrary}`);
  console.log(`devices      ${availableDevices(found).join(", ")} (default ${defaultDevice()})`);
  console.log(`cpu threads  ${getNumThreads()}`);
  console.log(`node         ${process.version}`);
}
