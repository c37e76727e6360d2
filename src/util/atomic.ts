/**
 * Atomic writes, the one implementation every layer uses: a reader (or a crash, or a kill) sees the old file
 * or the new one, never a torn one, and a failed write leaves any earlier file at that path untouched.
 *
 * A file is written into a temporary file in the same folder (so the rename cannot cross file systems),
 * flushed to disk (fsync), renamed over the target, and the folder is then synced (best effort) so the rename
 * itself survives a power cut. A folder (a checkpoint, an exported model) is filled under `<dir>.tmp` and
 * renamed into place when complete.
 *
 * Why not npm's write-file-atomic: it takes the whole content as one buffer, and our largest writer
 * (safetensors, a multi-GB UNet streamed tensor by tensor from device memory through a bounce buffer) cannot
 * hand it one without doubling peak memory; `writeAtomicWith` streams into the temporary file instead, and
 * text and JSON go through the same code. It also publishes folders (`writeDirectoryAtomic`), which
 * write-file-atomic does not. What we keep is the small core both share: temporary file, fsync, rename.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";

/** Largest single write; writeSync refuses lengths of 2 GiB and more. */
const MAX_WRITE = 1 << 30;

/**
 * Writes `file` atomically, the content coming from `write`, which gets the temporary file's descriptor
 * (use `writeAll`). If `write` throws, the temporary file is removed and the target is left as it was.
 */
export function writeAtomicWith(file: string, write: (fd: number) => void): void {
  const folder = path.dirname(path.resolve(file));
  // Short enough for any file system's name limit, unique enough for concurrent writers.
  const temporary = path.join(folder, `.${path.basename(file).slice(0, 80)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(temporary, "wx");
  let open = true;
  let renamed = false;
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(temporary, file);
    renamed = true;
  } finally {
    if (open) closeSync(fd);
    if (!renamed) unlinkQuietly(temporary);
  }
  syncFolder(folder);
}

/** Writes all of `bytes` to `fd` (in chunks below writeSync's 2 GiB limit). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    done += writeSync(fd, bytes, done, Math.min(bytes.length - done, MAX_WRITE));
  }
}

/** Writes text (UTF-8) or bytes to `file` atomically. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  writeAtomicWith(file, (fd) => writeAll(fd, bytes));
}

/** Writes `value` as JSON (two-space indent, trailing newline) to `file` atomically. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Makes the folder `dir` atomically: `fill` writes its content into `<dir>.tmp` (emptied first: a leftover of
 * a killed attempt), which then replaces `dir`. A kill before the rename leaves any earlier `dir` complete;
 * if `fill` throws, the temporary folder is removed and `dir` is left as it was.
 */
export function writeDirectoryAtomic(dir: string, fill: (temporary: string) => void): void {
  const temporary = `${dir}.tmp`;
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary, { recursive: true });
  try {
    fill(temporary);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(temporary, dir);
  syncFolder(path.dirname(path.resolve(dir)));
}

/** The temporary file of `writeAtomicWith`: `.<name>.<pid>.<12 hex digits>.tmp`. */
const TEMPORARY = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Removes the temporary files `writeAtomicWith` left in `folder` when a kill landed mid-write, returning their
 * names. Only those whose writer is gone: a temporary file of a live process (another writer in the same folder)
 * is its own, still being written. A missing folder has none.
 */
export function removeStaleTemporaries(folder: string): string[] {
  if (!existsSync(folder)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(folder)) {
    const pid = Number(TEMPORARY.exec(name)?.[1] ?? NaN);
    if (Number.isNaN(pid) || pid === process.pid || processAlive(pid)) continue;
    unlinkQuietly(path.join(folder, name));
    removed.push(name);
  }
  return removed;
}

/** Whether a process with this id exists (signal 0 checks without sending; EPERM means it exists, not ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone, or never created: nothing to clean up.
  }
}

/** Makes a rename durable; some platforms cannot fsync a folder, and the file itself is already synced. */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort only.
  }
}
