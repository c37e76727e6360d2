/**
 * `hdb build-engine`: (re)builds the native addon against the libtorch found now ($LIBTORCH, then the torch
 * package of .venv, then of python3). `npm install` runs it (package.json's install script); run it again after
 * installing another PyTorch (a CUDA build, say). It imports the build alone, never the addon, so it works when
 * the addon is missing or stale.
 */
import { buildAddon, type BuildRecord } from "../engine/native/build.js";
import { findLibtorch } from "../engine/native/libtorch.js";
import { defineCommand, parseFlags } from "../util/flags.js";

export const BUILD_ENGINE_SPEC = defineCommand({
  name: "build-engine",
  summary: "build the native addon against the libtorch found now (after installing a CUDA PyTorch, say)",
  usage: "[--force]",
  details: "libtorch is looked for in $LIBTORCH (an unpacked libtorch folder), then the torch package of .venv, then that of python3.\n" +
    "The addon is rebuilt only when its source or the libtorch changed (folder, version, CUDA or not); --force rebuilds anyway.",
  flags: {
    force: { type: "boolean", description: "rebuild even when the addon is up to date" },
  },
  examples: ["hdb build-engine", "hdb build-engine --force", "LIBTORCH=/opt/libtorch hdb build-engine"],
});

/** `hdb build-engine` with its command-line arguments; returns what the addon is built against. */
export function runBuildEngine(argv: string[]): BuildRecord {
  const { values } = parseFlags(BUILD_ENGINE_SPEC, argv);
  const libtorch = findLibtorch();
  const record = buildAddon({ force: values.force, libtorch });
  console.error(`native addon ready: libtorch ${record.torchVersion} (${record.cuda ? "CUDA" : "CPU"}) at ${record.libtorchDir}`);
  return record;
}
