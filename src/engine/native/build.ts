/**
 * Builds the native addon (native/engine.cc) against the libtorch that `findLibtorch` finds.
 *
 * Run: `hdb build-engine [--force]` (src/cli/build-engine.ts, the one command line for it). Rebuilds only when
 * the sources, the libtorch folder, its version or its CUDA support changed. The result is build/engine.node
 * plus build/engine.json recording what it was built against; the loader refuses to use an addon whose record
 * does not match the libtorch found now.
 *
 * c10d's process groups (engine/distributed.ts): Gloo is always built in, on libtorch's own Gloo with the
 * declarations of native/gloo-declarations (the wheels ship no gloo headers; see its README). NCCL is built in
 * only for a CUDA libtorch whose nccl.h and CUDA headers are found (the nvidia-* pip packages next to the torch
 * package, or $CUDA_HOME); if that part does not compile against this libtorch, the addon is built without it,
 * saying why, so a GPU machine's build never fails because of NCCL.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { writeJsonAtomic } from "../../util/atomic.js";
import { findLibtorch, packageRoot, type Libtorch } from "./libtorch.js";

export interface BuildRecord {
  libtorchDir: string;
  torchVersion: string;
  cxx11Abi: boolean;
  cuda: boolean;
  /** c10d backends built in: "gloo", and "nccl" when a CUDA libtorch's NCCL part compiled. */
  distributed: string[];
  /** Why a CUDA build has no NCCL (headers not found, or that part did not compile). */
  ncclMissing?: string;
  sourceHash: string;
  buildSeconds: number;
  builtAt: string;
}

export function addonPaths(root = packageRoot()): { source: string; glooDeclarations: string; addon: string; record: string } {
  return {
    source: path.join(root, "native", "engine.cc"),
    glooDeclarations: path.join(root, "native", "gloo-declarations"),
    addon: path.join(root, "build", "engine.node"),
    record: path.join(root, "build", "engine.json"),
  };
}

/** The files the addon is compiled from: engine.cc and the gloo declarations it includes. */
function sourceFiles(paths: ReturnType<typeof addonPaths>): string[] {
  const headers = readdirSync(paths.glooDeclarations, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".h")).sort().map((name) => path.join(paths.glooDeclarations, name));
  return [paths.source, ...headers];
}

/**
 * Include folders for c10d's NCCL backend, or why there are none: nccl.h and the CUDA runtime's headers, from the
 * nvidia-* pip packages a CUDA torch wheel depends on (site-packages/nvidia/<name>/include) or a CUDA toolkit.
 */
function ncclIncludes(libtorch: Libtorch): { dirs: string[] } | { missing: string } {
  const nvidia = path.join(libtorch.dir, "..", "nvidia");
  const dirs = existsSync(nvidia) ? readdirSync(nvidia).map((name) => path.join(nvidia, name, "include")) : [];
  dirs.push(path.join(process.env["CUDA_HOME"] ?? process.env["CUDA_PATH"] ?? "/usr/local/cuda", "include"));
  const found = dirs.filter((dir) => existsSync(dir));
  const has = (header: string): boolean => [...found, "/usr/include"].some((dir) => existsSync(path.join(dir, header)));
  if (!has("nccl.h")) return { missing: `nccl.h not found (looked in ${nvidia}/*/include, $CUDA_HOME/include, /usr/include)` };
  if (!has("cuda_runtime_api.h")) return { missing: "the CUDA runtime's headers (cuda_runtime_api.h) not found" };
  return { dirs: found };
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
  const hash = createHash("sha256");
  for (const file of sourceFiles(paths)) hash.update(readFileSync(file));
  const sourceHash = hash.digest("hex").slice(0, 16);
  const previous = readBuildRecord(paths.record);
  if (
    !options.force && previous && existsSync(paths.addon) && previous.sourceHash === sourceHash &&
    previous.libtorchDir === libtorch.dir && previous.torchVersion === libtorch.version &&
    // A CUDA PyTorch installed over the CPU one (same folder, same version number) needs libtorch_cuda linked.
    previous.cuda === libtorch.cuda
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
    "-DUSE_C10D_GLOO", "-I", paths.glooDeclarations,
    "-I", nodeApiIncludeDir(root),
    "-I", path.join(libtorch.dir, "include"),
    "-I", path.join(libtorch.dir, "include", "torch", "csrc", "api", "include"),
    paths.source, "-o", tmp,
    "-L", lib, "-Wl,--no-as-needed", ...libs, "-Wl,--as-needed", `-Wl,-rpath,${lib}`,
  ];
  const compiler = process.env["CXX"] ?? "c++";
  if (!options.quiet) console.error(`building native addon against libtorch ${libtorch.version} (${libtorch.source}: ${libtorch.dir}) ...`);
  const started = Date.now();
  const distributed = ["gloo"];
  let ncclMissing: string | undefined;
  const nccl = libtorch.cuda ? ncclIncludes(libtorch) : undefined;
  if (nccl && "dirs" in nccl) {
    try {
      // Captured: when this part does not compile, the plain build below follows and its output is what counts.
      execFileSync(compiler, [...args, "-DUSE_C10D_NCCL", ...nccl.dirs.flatMap((dir) => ["-isystem", dir])], { stdio: ["ignore", "pipe", "pipe"] });
      distributed.push("nccl");
    } catch (error) {
      const output = String((error as { stderr?: Buffer }).stderr ?? error).split("\n").filter((line) => /error/.test(line)).slice(0, 5).join("\n");
      ncclMissing = `the NCCL part did not compile against this libtorch:\n${output}`;
    }
  } else if (nccl) {
    ncclMissing = nccl.missing;
  }
  if (ncclMissing !== undefined && !options.quiet) console.error(`building without c10d's NCCL backend: ${ncclMissing}`);
  if (!distributed.includes("nccl")) {
    try {
      execFileSync(compiler, args, { stdio: ["ignore", "inherit", "inherit"] });
    } catch (error) {
      throw new Error(`compiling ${paths.source} with ${compiler} failed (see the compiler output above): ${String(error)}`);
    }
  }
  renameSync(tmp, paths.addon);
  const record: BuildRecord = {
    libtorchDir: libtorch.dir, torchVersion: libtorch.version, cxx11Abi: libtorch.cxx11Abi, cuda: libtorch.cuda,
    distributed, ...(ncclMissing !== undefined ? { ncclMissing } : {}),
    sourceHash, buildSeconds: (Date.now() - started) / 1000, builtAt: new Date().toISOString(),
  };
  writeJsonAtomic(paths.record, record);
  if (!options.quiet) console.error(`built ${paths.addon} in ${record.buildSeconds.toFixed(1)} s`);
  return record;
}
