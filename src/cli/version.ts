/**
 * `hdb --version`: the package's version, then the libtorch the addon runs on and the default device. The
 * engine is imported only here, after the version is printed, so a missing addon still shows the version (and why
 * there is no libtorch line).
 */
import { readFileSync } from "node:fs";

/** The name and version in package.json (dist/src/cli/*.js → package.json). */
export function packageVersion(): { name: string; version: string } {
  const file = new URL("../../../package.json", import.meta.url);
  return JSON.parse(readFileSync(file, "utf8")) as { name: string; version: string };
}

/** The devices libtorch sees, as `hdb info` and `hdb --version` list them: "cpu", "cuda ×N", "mps". */
export function availableDevices(found: { cuda: number; mps: boolean }): string[] {
  return ["cpu", ...(found.cuda > 0 ? [`cuda ×${found.cuda}`] : []), ...(found.mps ? ["mps"] : [])];
}

/** Prints `<name> <version>`, `libtorch <version> (<folder>)` and `device <default> (<available>)`. */
export async function printVersion(): Promise<void> {
  const { name, version } = packageVersion();
  process.stdout.write(`${name} ${version}\n`);
  let engine: typeof import("../engine/index.js");
  try {
    engine = await import("../engine/index.js");
  } catch (error) {
    process.stdout.write(`libtorch none: ${(error as Error).message}\n`);
    return;
  }
  const build = engine.buildInfo();
  const available = availableDevices(engine.devices());
  process.stdout.write(`libtorch ${build.torchVersion} (${build.libtorchDir})\n`);
  process.stdout.write(`device ${engine.defaultDevice()} (available: ${available.join(", ")})\n`);
}
