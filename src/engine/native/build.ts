/**
 * Builds the native addon (native/engine.cc) against the libtorch that `findLibtorch` finds.
 *
 * Run: `node dist/src/engine/native/build.js [--force]`. Rebuilds only when the source, the libtorch
 * folder or its version changed. The result is build/engine.node plus build/engine.json recording what it
 * was built against; the loader refuses to use an addon whose record does not match the libtorch found now.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { writeJsonAtomic } from "../../util/atomic.js";
import { findLibtorch, packageRoot, type Libtorch } from "./libtorch.js";

export interface BuildRecord {
  libtorchDir: string;
  torchVersion: string;
  cxx11Abi: boolean;
  cuda: boolean;
  sourceHash: string;
  buildSeconds: number;
  builtAt: string;
}

export function addonPaths(root = packageRoot()): { source: string; addon: string; record: string } {
  return {
    source: path.join(root, "native", "engine.cc"),
    addon: path.join(root, "build", "engine.node"),
    record: path.join(root, "build", "engine.json"),
  };
}

function nodeApiIncludeDir(root: string): string {
  const require = createRequire(path.join(root, "package.json"));
  return path.dirname(require.resolve("node-api-headers/include/node_api.h"));
}

export function readBuildRecord(recordPath: string): BuildRecord | undefined {
  if (!existsSync(recordPath)) return undefined;
  return JSON.parse(readFileSync(recordPath, "utf8")) as BuildRecord;
}

export function buildAddon(options: { force?: boolean; libtorch?: Libtorch; quiet?: boolean } = {}): BuildRecord {
  const root = packageRoot();
  const paths = addonPaths(root);
  const libtorch = options.libtorch ?? findLibtorch();
  const sourceHash = createHash("sha256").update(readFileSync(paths.source)).digest("hex").slice(0, 16);
  const previous = readBuildRecord(paths.record);
  if (
    !options.force && previous && existsSync(paths.addon) && previous.sourceHash === sourceHash &&
    previous.libtorchDir === libtorch.dir && previous.torchVersion === libtorch.version
  ) {
    return previous;
  }
  mkdirSync(path.dirname(paths.addon), { recursive: true });
  const lib = path.join(libtorch.dir, "lib");
  const libs = ["-ltorch", "-ltorch_cpu", "-lc10"];
  // CUDA kernels register themselves when libtorch_cuda is loaded: link it even though no symbol is used.
  if (libtorch.cuda) libs.push("-ltorch_cuda", "-lc10_cuda");
  const tmp = paths.addon + ".tmp";
  const args = [
    "-std=c++20", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
    `-D_GLIBCXX_USE_CXX11_ABI=${libtorch.cxx11Abi ? 1 : 0}`,
    `-DHDB_LIBTORCH_DIR="${libtorch.dir}"`,
    "-I", nodeApiIncludeDir(root),
    "-I", path.join(libtorch.dir, "include"),
    "-I", path.join(libtorch.dir, "include", "torch", "csrc", "api", "include"),
    paths.source, "-o", tmp,
    "-L", lib, "-Wl,--no-as-needed", ...libs, "-Wl,--as-needed", `-Wl,-rpath,${lib}`,
  ];
  const compiler = process.env["CXX"] ?? "c++";
  if (!options.quiet) console.error(`building native addon against libtorch ${libtorch.version} (${libtorch.source}: ${libtorch.dir}) ...`);
  const started = Date.now();
  try {
    execFileSync(compiler, args, { stdio: ["ignore", "inherit", "inherit"] });
  } catch (error) {
    throw new Error(`compiling ${paths.source} with ${compiler} failed (see the compiler output above): ${String(error)}`);
  }
  renameSync(tmp, paths.addon);
  const record: BuildRecord = {
    libtorchDir: libtorch.dir, torchVersion: libtorch.version, cxx11Abi: libtorch.cxx11Abi, cuda: libtorch.cuda,
    sourceHash, buildSeconds: (Date.now() - started) / 1000, builtAt: new Date().toISOString(),
  };
  writeJsonAtomic(paths.record, record);
  if (!options.quiet) console.error(`built ${paths.addon} in ${record.buildSeconds.toFixed(1)} s`);
  return record;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  buildAddon({ force: process.argv.includes("--force") });
}
