/**
 * Where a measured result came from, recorded inside it so that anyone can rerun it: the commit (and whether
 * the tree had uncommitted changes), the exact command line, the thread count, the versions, and the sha256 of
 * every model file it measured. Paths inside the repository are written relative to it, so a record made on one
 * machine reads the same on another.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import path from "node:path";

export interface Provenance {
  /** `git rev-parse HEAD` of the repository, or null outside a git checkout (an installed package). */
  commit: string | null;
  /** Whether tracked files differed from that commit. */
  dirty: boolean | null;
  /** The command line as typed: program name and arguments, paths as given. */
  command: string;
  threads: number;
  node: string;
  /** Other versions the caller knows (e.g. torch). */
  versions: Record<string, string>;
  /** sha256 of each measured file: path (repository-relative when inside it) → hex digest. */
  files: Record<string, string>;
  date: string;
}

/** The repository root above `from` (a folder holding .git), or null. */
export function repositoryRoot(from: string): string | null {
  let dir = path.resolve(from);
  for (;;) {
    if (existsSync(path.join(dir, ".git"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** A path as recorded: relative to the repository when inside it, else absolute. */
export function recordedPath(file: string, root: string | null): string {
  const absolute = path.resolve(file);
  if (root === null) return absolute;
  const relative = path.relative(root, absolute);
  return relative.startsWith("..") || path.isAbsolute(relative) ? absolute : relative.split(path.sep).join("/");
}

/** sha256 of a file, read in 1 MiB chunks (model files can be gigabytes). */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, "r");
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** Every file under `target` (itself when a file), sorted, skipping dot-files. */
function filesUnder(target: string): string[] {
  if (!statSync(target).isDirectory()) return [target];
  return readdirSync(target, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith("."))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

function git(root: string, args: string[]): string | null {
  const run = spawnSync("git", args, { cwd: root, encoding: "utf8" });
  return run.status === 0 ? run.stdout.trim() : null;
}

/** The commit checked out in the repository holding `dir`, or null outside a git checkout. */
export function commitOf(dir: string): string | null {
  const root = repositoryRoot(dir);
  return root === null ? null : git(root, ["rev-parse", "HEAD"]);
}

/** sha256 of every file of `targets` (files or folders, each folder's files one by one), by recorded path. */
export function fileHashes(targets: readonly string[], cwd = process.cwd()): Record<string, string> {
  const root = repositoryRoot(cwd);
  const files: Record<string, string> = {};
  for (const target of targets) {
    if (!existsSync(target)) throw new Error(`provenance: ${target} does not exist`);
    for (const file of filesUnder(target)) files[recordedPath(file, root)] = sha256File(file);
  }
  return files;
}

/**
 * The provenance of a result: `command` as typed (e.g. ["hdb", ...process.argv.slice(2)]), the thread count,
 * and the model files or folders measured (each folder's files hashed one by one).
 */
export function provenance(options: { command: readonly string[]; threads: number; measured?: readonly string[]; versions?: Record<string, string>; cwd?: string }): Provenance {
  const root = repositoryRoot(options.cwd ?? process.cwd());
  const files = fileHashes(options.measured ?? [], options.cwd);
  const status = root === null ? null : git(root, ["status", "--porcelain", "--untracked-files=no"]);
  return {
    commit: root === null ? null : git(root, ["rev-parse", "HEAD"]),
    dirty: status === null ? null : status.length > 0,
    command: options.command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(" "),
    threads: options.threads,
    node: process.version,
    versions: { ...options.versions },
    files,
    date: new Date().toISOString(),
  };
}
