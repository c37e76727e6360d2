// Shared pieces of the service tests: `hdb serve` started as a real child process on loopback (a free port), the
// bundled mini-world model, and small HTTP helpers (fetch for ordinary requests, SSE read as a stream).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const hdb = path.join(repoRoot, "dist", "src", "cli", "hdb.js");
export const sampleFace = path.join(repoRoot, "samples", "faces", "60000-n1.png");

export function temporaryDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `hdb-${prefix}-`));
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for the exit. */
  kill9(): Promise<void>;
}

/** Starts `hdb serve --port 0` with these flags; resolves once it listens. */
export async function startServe(dataDir: string, flags: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [hdb, "serve", "--host", "127.0.0.1", "--port", "0", "--data", dataDir, "--threads", "1", ...flags], {
    cwd: repoRoot, env: { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" }, stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`hdb serve did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hdb serve exited (${code}) before listening: ${stderr}`));
    });
  });
  // Ready once every engine worker has loaded (/health's `ready`), so places in line do not depend on start-up time.
  for (const until = Date.now() + 60_000; ;) {
    const health = await (await fetch(`${url}/health`)).json() as { ready: number; devices: number };
    if (health.ready === health.devices) break;
    if (Date.now() > until) throw new Error(`hdb serve's workers were not ready in 60 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url, child, stderr: () => stderr,
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
    kill9: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** `hdb serve` with flags that must refuse to start: its exit code and stderr. */
export async function serveRefuses(flags: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [hdb, "serve", ...flags], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stderr };
}

export interface Job {
  id: string;
  kind: string;
  status: string;
  position: number | null;
  progress: { label: string; done: number; total: number; fraction: number; etaSeconds: number | null } | null;
  error: string | null;
  attempts: number;
  result: Record<string, unknown> | null;
}

export async function json<T = unknown>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: (text === "" ? null : JSON.parse(text)) as T };
}

/** POST /personalizations with these photos (file paths or bytes) and fields. */
export async function personalize(url: string, photos: (string | Uint8Array)[], fields: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<{ status: number; body: Job & { statusCode?: number } }> {
  const form = new FormData();
  for (const [i, photo] of photos.entries()) {
    const bytes = typeof photo === "string" ? readFileSync(photo) : photo;
    form.append("photo", new Blob([bytes], { type: "image/png" }), `photo-${i}.png`);
  }
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return json(`${url}/personalizations`, { method: "POST", body: form, headers });
}

export async function generate(url: string, body: Record<string, unknown>): Promise<{ status: number; body: Job & { statusCode?: number } }> {
  return json(`${url}/generations`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
}

/** Polls GET /jobs/:id until it has finished (or `timeoutMs`). */
export async function waitForJob(url: string, id: string, timeoutMs = 120_000): Promise<Job> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await json<Job>(`${url}/jobs/${id}`);
    if (body.status !== "queued" && body.status !== "running") return body;
    assert.ok(Date.now() < until, `job ${id} still ${body.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Reads GET /jobs/:id/events to its end: every job state sent. */
export async function readEvents(url: string, id: string): Promise<Job[]> {
  const response = await fetch(`${url}/jobs/${id}/events`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const text = await response.text();
  const events: Job[] = [];
  for (const block of text.split("\n\n")) {
    const data = block.split("\n").find((line) => line.startsWith("data: "));
    if (block.includes("event: job") && data) events.push(JSON.parse(data.slice(6)) as Job);
  }
  return events;
}

/** The tensor names and the header of a .safetensors file (checks that its length field and JSON header are whole). */
export function safetensorsHeader(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.readBigUInt64LE(0));
  const header = JSON.parse(view.subarray(8, 8 + length).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const end = Math.max(...Object.entries(header).filter(([k]) => k !== "__metadata__").map(([, v]) => v.data_offsets[1]));
  assert.equal(view.length, 8 + length + end, "the file holds exactly the bytes its header describes");
  return header;
}
