/**
 * Scale-out beyond one machine: the same job protocol (src/server/protocol.ts) on a Redis-backed queue (BullMQ),
 * with any number of worker processes (`hdb serve --worker --redis <url>`) on any machines that reach the Redis
 * server. Workers need no shared disk: a job carries its inputs (the re-encoded photos, a person's LiDB file) in its
 * data and answers with its files in its return value; the API server alone keeps the database and the data folder.
 *
 * RedisQueue is the API server's side (the JobQueue the job service uses: places in line, events); runRedisWorker is
 * a worker process's side, which runs each job on its own engine worker thread (DeviceQueue) so that BullMQ's lock
 * renewal never waits on libtorch. Finished jobs stay in Redis until the API server has published their files, so a
 * restarted API server collects what finished while it was down (recover → enqueue with force).
 */
import { EventEmitter } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { Job, Queue, QueueEvents, Worker, type ConnectionOptions } from "bullmq";
import { writeFileAtomic } from "../util/atomic.js";
import { DeviceQueue, QueueFullError, type JobQueue } from "./queue.js";
import type { EngineConfig, JobResult, JobSpec } from "./protocol.js";

/** The BullMQ queue's name. */
export const QUEUE_NAME = "hdb-jobs";

/** What a job carries through Redis: the spec without local paths, and its input files' bytes (base64). */
interface RemoteJobData {
  spec: JobSpec;
  photos: string[];
  lidb: string | null;
}

/** What a worker answers: the result and the output folder's files (base64), by name. */
interface RemoteJobResult {
  result: JobResult & { runner: string };
  files: Record<string, string>;
}

/** ioredis options from a redis:// URL (host, port, user, password, database). */
export function redisConnection(url: string): ConnectionOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--redis: not a URL: ${url} (redis://host:port[/db])`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") throw new Error(`--redis: ${url} is not a redis:// URL`);
  return {
    host: parsed.hostname, port: Number(parsed.port || 6379), db: Number(parsed.pathname.slice(1) || 0),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}), ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

export class RedisQueue extends EventEmitter implements JobQueue {
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #waiting: JobSpec[] = [];
  readonly #running = new Map<string, JobSpec>();
  /** Every job this server tracks, by id (waiting, running, or finished in Redis and not yet collected). */
  readonly #specs = new Map<string, JobSpec>();
  #workers = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Redis calls in order (enqueue, cancel, collect), so a cancel never overtakes its add. */
  #chain: Promise<void> = Promise.resolve();

  constructor(readonly options: { url: string; maxWaiting: number; log?: (line: string) => void }) {
    super();
    const connection = redisConnection(options.url);
    this.#queue = new Queue(QUEUE_NAME, { connection });
    // Not consuming events before start() has attached the listeners (they would be lost).
    this.#events = new QueueEvents(QUEUE_NAME, { connection, autorun: false });
  }

  start(): void {
    this.#events.on("active", ({ jobId }) => this.#started(jobId));
    this.#events.on("progress", ({ jobId, data }) => {
      const p = data as { label?: string; done?: number; total?: number };
      if (this.#specs.has(jobId) && typeof p.label === "string") this.emit("progress", jobId, p.label, p.done ?? 0, p.total ?? 0);
    });
    this.#events.on("completed", ({ jobId }) => this.#then(() => this.#collect(jobId)));
    this.#events.on("failed", ({ jobId, failedReason }) => this.#then(() => this.#collect(jobId, failedReason)));
    let ticks = 0;
    const refresh = (): void => {
      this.#queue.getWorkersCount().then((n) => (this.#workers = n), () => (this.#workers = 0));
      // Events are not replayed: one missed (the server started while the job was finishing, a Redis connection
      // blip) would leave a job running for ever, so running jobs (every second) and all tracked ones (every 5 s)
      // are checked against their state in Redis too.
      const ids = ticks++ % 5 === 0 ? [...this.#specs.keys()] : [...this.#running.keys()];
      for (const id of ids) this.#then(() => this.#reconcile(id));
    };
    this.#events.run().catch((error: unknown) => this.options.log?.(`redis queue events: ${(error as Error).message}`));
    refresh();
    this.#timer = setInterval(refresh, 1000);
  }

  async #reconcile(jobId: string): Promise<void> {
    if (!this.#specs.has(jobId)) return;
    const job = await Job.fromId(this.#queue, jobId);
    if (job === undefined) return;
    const state = await job.getState();
    if (state === "active") this.#started(jobId);
    else if (state === "completed" || state === "failed") await this.#collect(jobId, state === "failed" ? job.failedReason : undefined);
  }

  enqueue(job: JobSpec, options: { force?: boolean } = {}): number {
    if (!options.force && this.#waiting.length >= this.options.maxWaiting) {
      throw new QueueFullError(`the queue is full (${this.#waiting.length} jobs waiting, ${this.#running.size} running): try again later`);
    }
    this.#specs.set(job.jobId, job);
    this.#waiting.push(job);
    const place = this.#waiting.length;
    this.#then(async () => {
      const existing = await Job.fromId(this.#queue, job.jobId);
      if (existing) {
        // A job this server accepted before a restart: collect it if it finished meanwhile, else keep following it.
        const state = await existing.getState();
        if (state === "completed" || state === "failed") await this.#collect(job.jobId, state === "failed" ? existing.failedReason : undefined);
        else if (state === "active") this.#started(job.jobId);
        return;
      }
      const data: RemoteJobData = {
        spec: job,
        photos: job.kind === "personalize" ? job.photos.map((file) => readFileSync(file).toString("base64")) : [],
        lidb: job.kind === "generate" && job.lidb !== null ? readFileSync(job.lidb).toString("base64") : null,
      };
      await this.#queue.add(job.kind, data, { jobId: job.jobId, removeOnComplete: false, removeOnFail: false, attempts: 1 });
    });
    this.emit("moved");
    return place;
  }

  position(jobId: string): number | null {
    if (this.#running.has(jobId)) return 0;
    const index = this.#waiting.findIndex((j) => j.jobId === jobId);
    return index < 0 ? null : index + 1;
  }

  cancel(jobId: string): boolean {
    const index = this.#waiting.findIndex((j) => j.jobId === jobId);
    if (index < 0) return false;
    this.#waiting.splice(index, 1);
    this.#specs.delete(jobId);
    // A worker may have taken it already: then it runs, and its result is ignored (the job service knows it was cancelled).
    this.#then(async () => {
      await this.#queue.remove(jobId).catch(() => 0);
    });
    this.emit("moved");
    return true;
  }

  get running(): string[] {
    return [...this.#running.keys()];
  }

  get waiting(): string[] {
    return this.#waiting.map((j) => j.jobId);
  }

  get devices(): number {
    return this.#workers;
  }

  get ready(): number {
    return this.#workers;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#chain;
    await this.#events.close();
    await this.#queue.close();
  }

  #then(step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch((error: unknown) => this.options.log?.(`redis queue: ${(error as Error).message}`));
  }

  #started(jobId: string): void {
    const index = this.#waiting.findIndex((j) => j.jobId === jobId);
    if (index < 0) return;
    const [spec] = this.#waiting.splice(index, 1);
    this.#running.set(jobId, spec!);
    this.emit("started", jobId);
    this.emit("moved");
  }

  /** A job finished in Redis: its files into the job's staging folder, then "done" (or "failed"); then it leaves Redis. */
  async #collect(jobId: string, failedReason?: string): Promise<void> {
    const spec = this.#specs.get(jobId);
    if (spec === undefined) return;
    this.#started(jobId);
    this.#specs.delete(jobId);
    this.#running.delete(jobId);
    const job = await Job.fromId(this.#queue, jobId);
    if (failedReason !== undefined || job === undefined) {
      this.emit("failed", jobId, failedReason ?? "the job vanished from Redis");
    } else {
      const answer = job.returnvalue as RemoteJobResult;
      mkdirSync(spec.outDir, { recursive: true });
      for (const [name, base64] of Object.entries(answer.files)) writeFileAtomic(path.join(spec.outDir, path.basename(name)), Buffer.from(base64, "base64"));
      this.emit("done", jobId, answer.result);
    }
    await job?.remove();
    this.emit("moved");
  }
}

/**
 * A worker process: takes jobs from Redis one at a time and runs each on its own engine worker thread; resolves the
 * handle once connected. `close()` stops taking jobs (a running one is finished first).
 */
export async function runRedisWorker(options: { url: string; engine: EngineConfig; lockSeconds?: number; log?: (line: string) => void }): Promise<{ close(): Promise<void> }> {
  const local = new DeviceQueue({ engine: options.engine, maxWaiting: 1 });
  local.start();
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (local.ready > 0) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  const runner = `${hostname()}:${process.pid}`;
  const lockMs = Math.round((options.lockSeconds ?? 60) * 1000);
  const worker = new Worker<RemoteJobData, RemoteJobResult>(QUEUE_NAME, async (job) => {
    options.log?.(`${job.data.spec.kind} ${job.id} started`);
    const dir = mkdtempSync(path.join(tmpdir(), "hdb-worker-"));
    try {
      const outDir = path.join(dir, "out");
      let spec: JobSpec;
      if (job.data.spec.kind === "personalize") {
        const photos = job.data.photos.map((base64, i) => {
          const file = path.join(dir, `photo-${i}.png`);
          writeFileSync(file, Buffer.from(base64, "base64"));
          return file;
        });
        spec = { ...job.data.spec, photos, outDir };
      } else {
        let lidb: string | null = null;
        if (job.data.lidb !== null) {
          lidb = path.join(dir, "person.lidb.safetensors");
          writeFileSync(lidb, Buffer.from(job.data.lidb, "base64"));
        }
        spec = { ...job.data.spec, lidb, outDir };
      }
      const result = await new Promise<JobResult>((resolve, reject) => {
        const onProgress = (id: string, label: string, done: number, total: number): void => {
          if (id === spec.jobId) void job.updateProgress({ label, done, total }).catch(() => undefined);
        };
        const onDone = (id: string, value: JobResult): void => {
          if (id !== spec.jobId) return;
          off();
          resolve(value);
        };
        const onFailed = (id: string, message: string): void => {
          if (id !== spec.jobId) return;
          off();
          reject(new Error(message));
        };
        const off = (): void => {
          local.off("progress", onProgress).off("done", onDone).off("failed", onFailed);
        };
        local.on("progress", onProgress).on("done", onDone).on("failed", onFailed);
        local.enqueue(spec);
      });
      const files = Object.fromEntries(readdirSync(outDir).filter((name) => !name.startsWith(".")).map((name) => [name, readFileSync(path.join(outDir, name)).toString("base64")]));
      options.log?.(`${job.data.spec.kind} ${job.id} done`);
      return { result: { ...result, runner }, files };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, {
    // A worker that dies (kill -9, a lost machine) stops renewing its lock; after lockDuration the stalled-job check
    // (every stalledInterval) puts the job back in line for another worker.
    connection: redisConnection(options.url), concurrency: 1, lockDuration: lockMs, stalledInterval: lockMs,
  });
  await worker.waitUntilReady();
  options.log?.(`worker ${runner} takes jobs from ${QUEUE_NAME}`);
  return {
    close: async () => {
      await worker.close();
      await local.close();
    },
  };
}
