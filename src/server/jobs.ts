/**
 * The service's jobs from acceptance to their files: a personalisation (photos → a model with its LiDB file and
 * both LoRA exports) or a generation (a model or the base, a prompt → images). Joins the storage (src/server/store.ts),
 * the bounded device queue (src/server/queue.ts) and the data folder:
 *
 * - accept: inputs written (atomically, as one folder) before the job's row, the row before the job is queued;
 * - run: the worker writes into staging/<job id>/, emptied first;
 * - publish: staging renamed into models/<model id>/ or generations/<job id>/, then the row marked succeeded (one
 *   transaction with the model's row), so a crash at any point leaves either a finished job with whole files or
 *   an unfinished one that runs again;
 * - recover (at start): staging emptied, half-written folders removed, every queued or interrupted job queued again
 *   in its original order (one interrupted `maxAttempts` times fails instead, so a job that kills the server
 *   cannot loop forever).
 *
 * Progress is kept in memory with its rate and ETA; "job" events (the job id) tell the SSE streams to send the new
 * state.
 */
import { EventEmitter } from "node:events";
import { copyFileSync, existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { writeDirectoryAtomic, writeFileAtomic } from "../util/atomic.js";
import { isId, newId } from "./ids.js";
import { MODEL_FILES, type GenerateSpec, type GenerationSettings, type JobResult, type JobSpec, type PersonalizeJobSettings, type PersonalizeSpec } from "./protocol.js";
import { QueueFullError, type JobQueue } from "./queue.js";
import type { JobRow, ModelRow, Store } from "./store.js";

/** A request the service refuses: `statusCode` is the HTTP answer. */
export class ServiceError extends Error {
  override name = "ServiceError";
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

export interface PersonalizeParams {
  modelId: string;
  name: string;
  photos: string[];
  settings: PersonalizeJobSettings;
}

export interface GenerateParams extends GenerationSettings {
  /** A personalised model, or null for the base model. */
  modelId: string | null;
}

export interface JobProgress {
  label: string;
  done: number;
  total: number;
  fraction: number;
  /** Seconds left at this phase's rate so far; null until it is measured. */
  etaSeconds: number | null;
}

/** A job as the API shows it. */
export interface JobView {
  id: string;
  kind: JobRow["kind"];
  status: JobRow["status"];
  /** 0 running, 1.. its place in line, null when finished. */
  position: number | null;
  progress: JobProgress | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
  error: string | null;
  params: Record<string, unknown>;
  result: Record<string, unknown> | null;
}

export interface ModelView {
  id: string;
  name: string;
  jobId: string;
  createdAt: string;
  files: Record<string, { url: string; bytes: number | null }>;
  photo: string;
  summary: Record<string, unknown>;
}

interface Tracker {
  label: string;
  done: number;
  total: number;
  since: number;
  startDone: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class JobService extends EventEmitter {
  readonly #progress = new Map<string, Tracker>();

  constructor(readonly store: Store, readonly queue: JobQueue, readonly options: { maxAttempts?: number; log?: (line: string) => void } = {}) {
    super();
    queue.on("started", (id: string) => {
      store.markRunning(id);
      this.emit("job", id);
    });
    queue.on("progress", (id: string, label: string, done: number, total: number) => this.#onProgress(id, label, done, total));
    queue.on("done", (id: string, result: JobResult) => this.#onDone(id, result));
    queue.on("failed", (id: string, message: string) => {
      if (this.#unfinished(id)) this.#finish(id, "failed", { error: message });
    });
    queue.on("moved", () => {
      for (const id of [...queue.running, ...queue.waiting]) this.emit("job", id);
    });
  }

  /** Cleans the data folder after a stop and queues every unfinished job again, oldest first. */
  recover(): { requeued: string[]; failed: string[] } {
    const { store } = this;
    for (const name of readdirSync(path.join(store.dataDir, "staging"))) rmSync(path.join(store.dataDir, "staging", name), { recursive: true, force: true });
    for (const sub of ["inputs", "models", "generations"]) {
      for (const name of readdirSync(path.join(store.dataDir, sub))) {
        if (name.endsWith(".tmp") || !isId(name)) rmSync(path.join(store.dataDir, sub, name), { recursive: true, force: true });
      }
    }
    // Inputs of a request that stopped between its files and its row belong to no job.
    for (const name of readdirSync(path.join(store.dataDir, "inputs"))) {
      const job = store.job(name);
      if (job === null || (job.status !== "queued" && job.status !== "running")) rmSync(store.inputsDir(name), { recursive: true, force: true });
    }
    const requeued: string[] = [];
    const failed: string[] = [];
    const maxAttempts = this.options.maxAttempts ?? 3;
    for (const job of store.unfinishedJobs()) {
      if (job.attempts >= maxAttempts) {
        store.markFinished(job.id, "failed", { error: `interrupted ${job.attempts} times (the server stopped while running it); not tried again` });
        failed.push(job.id);
        continue;
      }
      store.markRequeued(job.id);
      this.queue.enqueue(this.#spec(job), { force: true });
      requeued.push(job.id);
    }
    if (requeued.length > 0) this.options.log?.(`re-queued ${requeued.length} job(s) accepted before the restart`);
    return { requeued, failed };
  }

  /** Accepts a personalisation of the (already re-encoded) photos: its job, queued. */
  submitPersonalization(photos: Buffer[], options: { name: string; settings: PersonalizeJobSettings }): JobView {
    this.#checkRoom();
    const id = newId();
    const names = photos.map((_, i) => `photo-${i}.png`);
    writeDirectoryAtomic(this.store.inputsDir(id), (dir) => photos.forEach((png, i) => writeFileAtomic(path.join(dir, names[i]!), png)));
    const params: PersonalizeParams = { modelId: newId(), name: options.name, photos: names, settings: options.settings };
    const row = this.store.insertJob({ id, kind: "personalize", params: { ...params } });
    this.queue.enqueue(this.#spec(row));
    return this.view(id)!;
  }

  /** Accepts a generation: its job, queued. */
  submitGeneration(params: GenerateParams): JobView {
    if (params.modelId !== null && this.store.model(params.modelId) === null) throw new ServiceError(404, `no model ${params.modelId}`);
    this.#checkRoom();
    const id = newId();
    const row = this.store.insertJob({ id, kind: "generate", params: { ...params } });
    this.queue.enqueue(this.#spec(row));
    return this.view(id)!;
  }

  view(id: string): JobView | null {
    const row = this.store.job(id);
    if (row === null) return null;
    const tracker = this.#progress.get(id);
    let progress: JobProgress | null = null;
    if (tracker && row.status === "running") {
      const elapsed = (Date.now() - tracker.since) / 1000;
      const rate = tracker.done > tracker.startDone && elapsed > 0 ? (tracker.done - tracker.startDone) / elapsed : 0;
      progress = {
        label: tracker.label, done: tracker.done, total: tracker.total, fraction: tracker.total > 0 ? tracker.done / tracker.total : 0,
        etaSeconds: rate > 0 ? (tracker.total - tracker.done) / rate : null,
      };
    }
    return {
      id: row.id, kind: row.kind, status: row.status, position: this.queue.position(id) ?? (row.status === "queued" || row.status === "running" ? 0 : null),
      progress, createdAt: iso(row.createdAt)!, startedAt: iso(row.startedAt), finishedAt: iso(row.finishedAt), attempts: row.attempts,
      error: row.error, params: row.params, result: row.result,
    };
  }

  jobs(limit: number): JobView[] {
    return this.store.jobs(limit).map((row) => this.view(row.id)!);
  }

  /** Cancels a waiting job, or deletes a finished one with its files; a running one cannot be deleted (409). */
  deleteJob(id: string): "cancelled" | "deleted" {
    const row = this.store.job(id);
    if (row === null) throw new ServiceError(404, `no job ${id}`);
    if (row.status === "running") throw new ServiceError(409, `job ${id} is running; it can be deleted once it has finished`);
    if (row.status === "queued") {
      this.queue.cancel(id);
      this.#finish(id, "cancelled", { error: "cancelled before it started" });
      return "cancelled";
    }
    this.store.deleteJob(id);
    this.#remove(this.store.generationDir(id));
    this.#remove(this.store.inputsDir(id));
    return "deleted";
  }

  model(id: string): ModelView | null {
    const row = this.store.model(id);
    return row === null ? null : this.#modelView(row);
  }

  models(limit: number): ModelView[] {
    return this.store.models(limit).map((row) => this.#modelView(row));
  }

  deleteModel(id: string): void {
    if (!this.store.deleteModel(id)) throw new ServiceError(404, `no model ${id}`);
    this.#remove(this.store.modelDir(id));
  }

  /** The path of one of a model's files (after checking the id), or null. */
  modelFile(id: string, file: keyof typeof MODEL_FILES | "photo"): string | null {
    if (!isId(id) || this.store.model(id) === null) return null;
    const name = file === "photo" ? "reference.png" : MODEL_FILES[file];
    const full = path.join(this.store.modelDir(id), name);
    return existsSync(full) ? full : null;
  }

  /** The path of a generation's image `index`, or null. */
  imageFile(jobId: string, index: number): string | null {
    const row = this.store.job(jobId);
    if (row === null || row.kind !== "generate" || row.status !== "succeeded") return null;
    const images = (row.result?.["images"] as string[] | undefined) ?? [];
    const name = images[index];
    return name === undefined ? null : path.join(this.store.generationDir(jobId), name);
  }

  #checkRoom(): void {
    if (this.queue.waiting.length >= this.queue.options.maxWaiting) {
      throw new QueueFullError(`the queue is full (${this.queue.waiting.length} jobs waiting): try again later`);
    }
  }

  #spec(row: JobRow): JobSpec {
    const outDir = this.store.stagingDir(row.id);
    rmSync(outDir, { recursive: true, force: true });
    if (row.kind === "personalize") {
      const params = row.params as unknown as PersonalizeParams;
      return { kind: "personalize", jobId: row.id, outDir, photos: params.photos.map((name) => path.join(this.store.inputsDir(row.id), path.basename(name))), settings: params.settings } satisfies PersonalizeSpec;
    }
    const params = row.params as unknown as GenerateParams;
    return {
      kind: "generate", jobId: row.id, outDir, lidb: params.modelId === null ? null : path.join(this.store.modelDir(params.modelId), MODEL_FILES.lidb),
      weight: params.weight, prompt: params.prompt, negativePrompt: params.negativePrompt, seed: params.seed, steps: params.steps, guidance: params.guidance, images: params.images,
    } satisfies GenerateSpec;
  }

  #onProgress(id: string, label: string, done: number, total: number): void {
    const tracker = this.#progress.get(id);
    if (tracker === undefined || tracker.label !== label || tracker.total !== total || done < tracker.done) {
      this.#progress.set(id, { label, done, total, since: Date.now(), startDone: done });
    } else {
      tracker.done = done;
    }
    this.emit("job", id);
  }

  /** Whether the job is still waiting or running (a runner may finish a job that was cancelled meanwhile). */
  #unfinished(id: string): boolean {
    const status = this.store.job(id)?.status;
    return status === "queued" || status === "running";
  }

  #onDone(id: string, result: JobResult): void {
    const row = this.store.job(id);
    if (row === null || !this.#unfinished(id)) {
      this.#remove(this.store.stagingDir(id));
      return;
    }
    const staging = this.store.stagingDir(id);
    try {
      if (result.kind === "personalize") {
        const params = row.params as unknown as PersonalizeParams;
        copyFileSync(path.join(this.store.inputsDir(id), params.photos[0]!), path.join(staging, "reference.png"));
        const target = this.store.modelDir(params.modelId);
        rmSync(target, { recursive: true, force: true });
        renameSync(staging, target);
        this.store.finishPersonalization(id, { id: params.modelId, name: params.name, summary: { ...result } }, { modelId: params.modelId, ...result });
        this.#remove(this.store.inputsDir(id));
      } else {
        const target = this.store.generationDir(id);
        rmSync(target, { recursive: true, force: true });
        renameSync(staging, target);
        this.store.markFinished(id, "succeeded", { result: { ...result } });
      }
      this.#progress.delete(id);
      this.emit("job", id);
    } catch (error) {
      this.#finish(id, "failed", { error: `publishing the result failed: ${(error as Error).message}` });
    }
  }

  #finish(id: string, status: "failed" | "cancelled", outcome: { error: string }): void {
    // Clients see the reason, not where the server keeps its files.
    this.store.markFinished(id, status, { error: outcome.error.replaceAll(this.store.dataDir, "<data>") });
    this.#progress.delete(id);
    this.#remove(this.store.stagingDir(id));
    this.#remove(this.store.inputsDir(id));
    this.options.log?.(`job ${id} ${status}: ${outcome.error}`);
    this.emit("job", id);
  }

  #modelView(row: ModelRow): ModelView {
    const bytes = (row.summary["bytes"] ?? {}) as Record<string, number>;
    const files = Object.fromEntries(Object.keys(MODEL_FILES).map((kind) => [kind, { url: `/models/${row.id}/${kind}`, bytes: bytes[kind] ?? null }]));
    return { id: row.id, name: row.name, jobId: row.jobId, createdAt: iso(row.createdAt)!, files, photo: `/models/${row.id}/photo`, summary: row.summary };
  }

  /** Removes a folder by renaming it away first, so no reader sees it half-deleted. */
  #remove(dir: string): void {
    if (!existsSync(dir)) return;
    const trash = path.join(this.store.dataDir, "staging", `${path.basename(dir)}.${newId()}.deleted`);
    try {
      renameSync(dir, trash);
      rmSync(trash, { recursive: true, force: true });
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
