/** `hdb info`: the engine's build and runtime facts. */
import { buildInfo, defaultDevice, devices, getNumThreads } from "../engine/index.js";

export function printInfo(): void {
  const build = buildInfo();
  const found = devices();
  console.log(`libtorch     ${build.torchVersion} (${build.libtorchDir})`);
  console.log(`loaded       ${build.loadedLibrary}`);
  console.log(`devices      cpu${found.cuda > 0 ? `, cuda ×${found.cuda}` : ""}${found.mps ? ", mps" : ""} (default ${defaultDevice()})`);
  console.log(`cpu threads  ${getNumThreads()}`);
  console.log(`node         ${process.version}`);
}
