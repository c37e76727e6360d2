// What a user does with the npm package (issue 21): `npm pack` the repository, `npm install` the tarball into an
// empty project in the system's temporary folder (so nothing resolves to this repository's node_modules: PATH and
// the environment are cleaned of it), type-check the README's "Use as a library" program with a strict tsconfig,
// run it to generate images from the bundled model, and run `npx hdb info`, `npx hdb --version` and
// `npx hdb generate`. The package must hold the compiled library with its declarations, the addon source, the
// bundled models and samples, and nothing else; its install must build the addon against $LIBTORCH (the libtorch
// this checkout's addon uses). The size of the package and the install time go to bench/results/npm-install.json.
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { commitOf } from "../../src/util/provenance.js";
import { readmeExample } from "../readme.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
  name: string; version: string; exports: Record<string, string | { types: string; default: string }>;
};
const results = path.join(root, "bench", "results", "npm-install.json");

/**
 * The environment of a user's shell: no npm_* variables of an enclosing `npm test`, no NODE_PATH, and no PATH entry
 * inside this repository (its node_modules/.bin), so that nothing in the temporary project can reach the repository.
 */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === "NODE_PATH" || key === "INIT_CWD" || key === "LIBTORCH") continue;
    env[key] = value;
  }
  env["PATH"] = (process.env["PATH"] ?? "").split(path.delimiter).filter((dir) => dir && !path.resolve(dir).startsWith(root)).join(path.delimiter);
  return { ...env, ...extra };
}

interface Ran { stdout: string; stderr: string; status: number | null; seconds: number }

function run(command: string, args: string[], options: SpawnSyncOptions & { cwd: string; env: NodeJS.ProcessEnv }, expectFailure = false): Ran {
  const started = performance.now();
  const child = spawnSync(command, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 20 * 60_000, ...options });
  const ran = { stdout: String(child.stdout ?? ""), stderr: String(child.stderr ?? ""), status: child.status, seconds: (performance.now() - started) / 1000 };
  if (!expectFailure) {
    assert.equal(child.error, undefined, `${command} ${args.join(" ")}: ${String(child.error)}`);
    assert.equal(child.status, 0, `${command} ${args.join(" ")} in ${options.cwd} failed (${child.status}):\n${ran.stdout.slice(-4000)}\n${ran.stderr.slice(-4000)}`);
  }
  return ran;
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const bytes = readFileSync(file);
  assert.equal(bytes.subarray(1, 4).toString("latin1"), "PNG", `${file} is a PNG`);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

interface PackedFile { path: string; size: number }
interface Packed { filename: string; size: number; unpackedSize: number; entryCount: number; files: PackedFile[] }

/** Checks the packed file list: what a user needs, nothing of the repository's tests, oracles or dev scripts. */
function checkContents(files: readonly PackedFile[]): void {
  const paths = files.map((f) => f.path);
  const allowed = /^(package\.json|README\.md|LICENSE(\.\w+)?|dist\/src\/.+\.(js|d\.ts)|native\/.+|models\/miniworld\/.+|samples\/.+|web\/dist\/.+)$/;
  const stray = paths.filter((p) => !allowed.test(p));
  assert.deepEqual(stray, [], "files outside the library, addon source, models, samples and the built page of hdb serve");
  const stale = paths.filter((p) => p.startsWith("dist/src/")).filter((p) => {
    const source = p.replace(/^dist\//, "").replace(/(\.d\.ts|\.js)$/, ".ts");
    return !existsSync(path.join(root, source));
  });
  assert.deepEqual(stale, [], "compiled files whose source is gone (prepack prunes them)");
  for (const needed of [
    "dist/src/index.d.ts", "dist/src/cli/hdb.js", "native/engine.cc", "models/miniworld/base/model_index.json",
    "models/miniworld/base/unet/diffusion_pytorch_model.safetensors", "models/miniworld/hypernetwork/model.safetensors", "samples/faces/60000-n1.png",
    "web/dist/index.html", "web/dist/app.js",
  ]) assert.ok(paths.includes(needed), `the package holds ${needed}`);
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === "string" ? [target] : [target.types, target.default]) {
      assert.ok(paths.includes(file.replace(/^\.\//, "")), `export ${subpath}: ${file} is in the package`);
    }
  }
}

test("npm pack → npm install in an empty project: the library type-checks, generates from the bundled model, and hdb runs", { timeout: 40 * 60_000 }, (t) => {
  const record = JSON.parse(readFileSync(path.join(root, "build", "engine.json"), "utf8")) as { libtorchDir: string; torchVersion: string };
  const work = mkdtempSync(path.join(tmpdir(), "hdb-npm-install-"));
  assert.ok(!path.resolve(work).startsWith(root), "the project lies outside the repository");
  const env = userEnv({ LIBTORCH: record.libtorchDir });
  const quiet = ["--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];
  try {
    // 1. The package, as `npm pack` makes it (its prepack compiles and prunes dist/src).
    const pack = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root, env });
    const packed = (JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as Packed[])[0]!;
    checkContents(packed.files);
    const tarball = path.join(work, packed.filename);
    assert.equal(statSync(tarball).size, packed.size);

    // 2. An empty project: the check program's own tools first, then the package (timed: download/unpack + addon build).
    const project = path.join(work, "project");
    mkdirSync(project);
    writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "hdb-user", private: true, type: "module" }, null, 2));
    const devVersion = (name: string): string => (JSON.parse(readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    run("npm", ["install", ...quiet, "--save-dev", `typescript@${devVersion("typescript")}`, `@types/node@^20`], { cwd: project, env });
    const install = run("npm", ["install", ...quiet, "--foreground-scripts", tarball], { cwd: project, env });
    const installed = path.join(project, "node_modules", pkg.name);
    const built = JSON.parse(readFileSync(path.join(installed, "build", "engine.json"), "utf8")) as { libtorchDir: string; buildSeconds: number };
    assert.equal(built.libtorchDir, record.libtorchDir, "the install built the addon against $LIBTORCH");
    assert.ok(existsSync(path.join(installed, "build", "engine.node")));
    const resolved = run(process.execPath, ["--input-type=module", "-e", `console.log(import.meta.resolve(${JSON.stringify(pkg.name)}))`], { cwd: project, env });
    assert.ok(fileURLToPath(resolved.stdout.trim()).startsWith(installed + path.sep), `"${pkg.name}" resolves into the project: ${resolved.stdout}`);

    // 3. The README's program and one importing every subpath export, type-checked strictly against the shipped declarations.
    writeFileSync(path.join(project, "main.ts"), readmeExample("package example"));
    const subpaths = Object.keys(pkg.exports).filter((s) => s !== "./package.json").map((s) => (s === "." ? pkg.name : `${pkg.name}/${s.slice(2)}`));
    writeFileSync(path.join(project, "entries.ts"), [
      ...subpaths.map((s, i) => `import * as entry${i} from ${JSON.stringify(s)};`),
      `const entries: Record<string, object> = { ${subpaths.map((s, i) => `${JSON.stringify(s)}: entry${i}`).join(", ")} };`,
      "for (const [name, entry] of Object.entries(entries)) console.log(`${name} ${Object.keys(entry).length}`);",
      "",
    ].join("\n"));
    writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: false, types: ["node"], outDir: "out" },
      files: ["main.ts", "entries.ts"],
    }, null, 2));
    run("npx", ["tsc", "-p", "."], { cwd: project, env });
    const entries = run(process.execPath, ["out/entries.js"], { cwd: project, env });
    for (const s of subpaths) assert.match(entries.stdout, new RegExp(`^${s} [1-9]\\d*$`, "m"), `${s} exports something`);
    const program = run(process.execPath, ["out/main.js"], { cwd: project, env });
    assert.match(program.stdout, /^faces\.png: 2 images of 64×64 px, seed 0, libtorch \d+\.\d+\.\d+/m);
    assert.deepEqual(pngSize(path.join(project, "faces.png")), { width: 128, height: 64 });

    // 4. The command line, as `npx hdb` right after the install.
    const info = run("npx", ["hdb", "info"], { cwd: project, env });
    assert.match(info.stdout, new RegExp(`^libtorch\\s+${record.torchVersion.replace(/\./g, "\\.")}`, "m"));
    assert.match(info.stdout, /^devices\s+cpu/m);
    const version = run("npx", ["hdb", "--version"], { cwd: project, env });
    assert.match(version.stdout, new RegExp(`^${pkg.name} ${pkg.version.replace(/\./g, "\\.")}\\nlibtorch \\S+ \\(.+\\)\\ndevice \\S+`));
    const model = path.join("node_modules", pkg.name, "models", "miniworld", "base");
    run("npx", ["hdb", "generate", "--model", model, "--prompt", "a face with green hair", "--seed", "1", "--steps", "10", "--out", "cli.png"], { cwd: project, env });
    assert.deepEqual(pngSize(path.join(project, "cli.png")), { width: 64, height: 64 });

    // 5. No libtorch anywhere (no $LIBTORCH; a python3 first on PATH that has no torch): `npm install` stops, and
    //    `hdb build-engine` fails, with one message naming the CPU and the CUDA way to get one.
    const noTorchBin = path.join(work, "no-torch-bin");
    mkdirSync(noTorchBin);
    writeFileSync(path.join(noTorchBin, "python3"), "#!/bin/sh\necho 'No module named torch' >&2\nexit 1\n", { mode: 0o755 });
    const bare: NodeJS.ProcessEnv = { ...env, PATH: `${noTorchBin}${path.delimiter}${env["PATH"] ?? ""}` };
    delete bare["LIBTORCH"];
    const checkMessage = (output: string, what: string): void => {
      assert.match(output, /libtorch not found\./, what);
      assert.match(output, /CPU: +pip install torch --index-url https:\/\/download\.pytorch\.org\/whl\/cpu/, what);
      assert.match(output, /CUDA: +pip install torch --index-url https:\/\/download\.pytorch\.org\/whl\/cu\d+/, what);
      assert.match(output, /npx hdb build-engine/, what);
    };
    const none = run(process.execPath, [path.join(installed, "dist", "src", "cli", "hdb.js"), "build-engine"], { cwd: project, env: bare }, true);
    assert.equal(none.status, 1, none.stderr);
    assert.match(none.stderr, /^hdb: libtorch not found\./);
    checkMessage(none.stderr, "hdb build-engine");
    const noTorch = path.join(work, "project-without-torch");
    mkdirSync(noTorch);
    writeFileSync(path.join(noTorch, "package.json"), JSON.stringify({ name: "hdb-user-without-torch", private: true, type: "module" }));
    const failed = run("npm", ["install", ...quiet, tarball], { cwd: noTorch, env: bare }, true);
    assert.notEqual(failed.status, 0, "npm install without libtorch fails");
    checkMessage(failed.stderr, "npm install without libtorch");

    const measured = {
      package: `${pkg.name}@${pkg.version}`, commit: commitOf(root),
      tarballBytes: packed.size, unpackedBytes: packed.unpackedSize, files: packed.entryCount,
      packSeconds: round(pack.seconds), installSeconds: round(install.seconds), addonBuildSeconds: round(built.buildSeconds),
      command: `npm install ${quiet.join(" ")} --foreground-scripts ./${packed.filename}   (in an empty project; LIBTORCH=${record.libtorchDir})`,
      note: "installSeconds: the dependencies from the npm cache where it has them (--prefer-offline), else the registry; plus the addon's compile (one c++ process)",
      node: process.version, npm: run("npm", ["--version"], { cwd: project, env }).stdout.trim(),
      threads: { OMP_NUM_THREADS: process.env["OMP_NUM_THREADS"] ?? null }, measuredAt: new Date().toISOString(),
    };
    writeJsonAtomic(results, measured);
    const line = `package ${(packed.size / 1e6).toFixed(1)} MB (${(packed.unpackedSize / 1e6).toFixed(1)} MB unpacked, ${packed.entryCount} files); ` +
      `npm install ${measured.installSeconds} s of which the addon build ${measured.addonBuildSeconds} s`;
    t.diagnostic(line);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

function round(seconds: number): number {
  return Math.round(seconds * 10) / 10;
}
