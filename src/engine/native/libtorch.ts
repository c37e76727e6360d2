/**
 * Finding libtorch, the C++ library that does all tensor compute.
 *
 * Order: the `LIBTORCH` environment variable (a libtorch folder with include/ and lib/), then the torch
 * package of the project's `.venv`, then the torch package of `python3` on PATH. The first that exists wins;
 * when none does, the error says how to get one.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Libtorch {
  /** Folder holding include/ and lib/. */
  dir: string;
  /** Where it was found: "LIBTORCH", ".venv" or "python3". */
  source: "LIBTORCH" | ".venv" | "python3";
  /** torch version string, e.g. "2.13.0+cpu" (from version.h when no Python is involved). */
  version: string;
  /** Whether libtorch was built with the C++11 std::string ABI (the addon must match). */
  cxx11Abi: boolean;
  /** Whether the CUDA libraries are present (they must be linked so CUDA kernels register). */
  cuda: boolean;
}

/** The repository (or installed package) root: three levels above dist/src/engine/native. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("cannot find the package root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

function describeFolder(dir: string, source: Libtorch["source"], abiHint?: boolean): Libtorch {
  // The version header moved between releases; take the first that exists.
  const versionHeader = [
    path.join(dir, "include", "torch", "headeronly", "version.h"),
    path.join(dir, "include", "torch", "csrc", "api", "include", "torch", "version.h"),
  ].find((file) => existsSync(file));
  if (!versionHeader || !existsSync(path.join(dir, "lib"))) {
    throw new Error(
      `libtorch from ${source} at ${dir} is incomplete: expected include/torch/.../version.h and lib/. ` +
        "A PyTorch wheel or a libtorch zip from pytorch.org has both.",
    );
  }
  const header = readFileSync(versionHeader, "utf8");
  const part = (name: string): string => new RegExp(`#define TORCH_VERSION_${name}\\s+(\\d+)`).exec(header)?.[1] ?? "?";
  const version = `${part("MAJOR")}.${part("MINOR")}.${part("PATCH")}`;
  let cxx11Abi = abiHint;
  if (cxx11Abi === undefined) {
    // A libtorch zip records the ABI in its CMake config; recent releases only ship the C++11 ABI.
    const cmake = path.join(dir, "share", "cmake", "Torch", "TorchConfig.cmake");
    const match = existsSync(cmake) ? /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(readFileSync(cmake, "utf8")) : null;
    cxx11Abi = match ? match[1] === "1" : true;
  }
  const cuda = existsSync(path.join(dir, "lib", "libtorch_cuda.so"));
  return { dir, source, version, cxx11Abi, cuda };
}

function fromPython(python: string, source: Libtorch["source"]): Libtorch | undefined {
  if (source === ".venv" && !existsSync(python)) return undefined;
  try {
    const out = execFileSync(
      python,
      ["-c", "import os,torch;print(os.path.dirname(torch.__file__));print(int(torch.compiled_with_cxx11_abi()))"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60_000 },
    ).trim().split("\n");
    const [dir, abi] = out;
    if (!dir) return undefined;
    return describeFolder(dir, source, abi === "1");
  } catch {
    return undefined;
  }
}

/** Finds libtorch or throws an error that names every place looked and how to fix it. */
export function findLibtorch(): Libtorch {
  const env = process.env["LIBTORCH"];
  if (env) return describeFolder(path.resolve(env), "LIBTORCH");
  const venvPython = path.join(packageRoot(), ".venv", "bin", "python");
  const found = fromPython(venvPython, ".venv") ?? fromPython("python3", "python3");
  if (found) return found;
  throw new Error(
    "libtorch not found. Looked at: $LIBTORCH (unset), " +
      `${venvPython} (no torch), python3 on PATH (no torch). Get one of the two, then run \`npm install\` ` +
      "again (or, once installed, `npx hdb build-engine`):\n" +
      "  CPU:  pip install torch --index-url https://download.pytorch.org/whl/cpu\n" +
      "  CUDA: pip install torch --index-url https://download.pytorch.org/whl/cu128   (the CUDA build for your driver: https://pytorch.org/get-started/locally/)\n" +
      "pip installs into the python3 on PATH (an activated virtualenv works); or set LIBTORCH to an unpacked libtorch zip from " +
      "pytorch.org. From a clone of the repository, `bash scripts/setup.sh` creates .venv with torch==2.13.0.",
  );
}
