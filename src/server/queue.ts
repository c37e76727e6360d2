/**
 * The bounded job queue in front of the engine: one worker thread per device (src/server/worker.ts), each running
 * one job at a time; the other jobs wait in arrival order and know their place in line. At most `maxWaiting` jobs
 * wait: beyond that `enqueue` refuses (the API answers 503 with Retry-After) instead of letting memory and latency
 * grow without bound. A worker that dies (an engine abort, out of memory) fails its job with that reason and is
 * replaced, so one bad job does not stop the queue.
 *
 * Events: "started" (jobId), "progress" (jobId, label, done, total), "done" (jobId, result), "failed" (jobId,
 * message), "moved" () whenever places in line change.
 */
import { EventEmitter, once } from "node:events";
import { Worker } from "node:worker_threads";
import type { EngineConfig, JobResult, JobSpec, RunnerCommand, RunnerMessage } from "./protocol.js";

/**
 * What the job service needs of a queue, whatever runs the jobs: worker threads here (DeviceQueue) or worker processes
 * behind Redis (src/server/redis-queue.ts). Events: "started", "progress", "done", "failed", "moved" (as DeviceQueue's).
 */
export interface JobQueue extends EventEmitter {
  readonly options: { maxWaiting: number };
  start(): void;
  enqueue(job: JobSpec, options?: { force?: boolean }): number;
  position(jobId: string): number | null;
  cancel(jobId: string): boolean;
  readonly running: string[];
  readonly waiting: string[];
  /** Engine runners (devices, or worker processes) and those ready to take a job. */
  readonly devices: number;
  readonly ready: number;
  close(): Promise<void>;
}

export class QueueFullError extends Error {
  override name = "QueueFullError";
  readonly statusCode = 503;
}

interface Runner {
  device: string;
  worker: Worker;
  current: JobSpec | null;
  ready: boolean;
  stopping: boolean;
}

export interface QueueOptions {
  engine: EngineConfig;
  /** One worker thread per device ("cpu", "cuda:0", …); default [engine.device]. */
  devices?: string[];
  /** Jobs that may wait (beyond those running). */
  maxWaiting: number;
  /** The worker's module (default: ./worker.js beside this one). */
  workerUrl?: URL;
}

export class DeviceQueue extends EventEmitter implements JobQueue {
  readonly #waiting: JobSpec[] = [];
  readonly #runners: Runner[] = [];
  #closed = false;

  constructor(readonly options: QueueOptions) {
    super();
  }

  /** Starts the worker threads (each loads the engine). */
  start(): void {
    for (const device of this.options.devices ?? [this.options.engine.device]) this.#runners.push(this.#spawn(device));
  }

  /** Adds a job; its place in line (1 = next). `force` skips the bound (jobs accepted before a restart). */
  enqueue(job: JobSpec, options: { force?: boolean } = {}): number {
    if (this.#closed) throw new Error("the queue is closed");
    if (!options.force && this.#waiting.length >= this.options.maxWaiting) {
      throw new QueueFullError(`the queue is full (${this.#waiting.length} jobs waiting, ${this.running.length} running): try again later`);
    }
    this.#waiting.push(job);
    const place = this.#waiting.length;
    this.#pump();
    this.emit("moved");
    return place;
  }

  /** 0 while running, 1.. while waiting (1 = next), null when the queue does not hold it. */
  position(jobId: string): number | null {
    if (this.#runners.some((r) => r.current?.jobId === jobId)) return 0;
    const index = this.#waiting.findIndex((j) => j.jobId === jobId);
    return index < 0 ? null : index + 1;
  }

  /** Removes a waiting job; false if it is not waiting (running or unknown). */
  cancel(jobId: string): boolean {
    const index = this.#waiting.findIndex((j) => j.jobId === jobId);
    if (index < 0) return false;
    this.#waiting.splice(index, 1);
    this.emit("moved");
    return true;
  }

  get running(): string[] {
    return this.#runners.flatMap((r) => (r.current ? [r.current.jobId] : []));
  }

  get waiting(): string[] {
    return this.#waiting.map((j) => j.jobId);
  }

  get devices(): number {
    return this.#runners.length;
  }

  /** Workers that have loaded the engine and take jobs. */
  get ready(): number {
    return this.#runners.filter((r) => r.ready).length;
  }

  /**
   * Stops the workers: an idle one frees its models (and the Personalizer's scratch folder) and exits; a busy one is
   * terminated, its job abandoned (its row stays "running" and a restart runs it again).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#waiting.length = 0;
    await Promise.all(this.#runners.map(async (runner) => {
      runner.stopping = true;
      if (!runner.ready || runner.current !== null) {
        await runner.worker.terminate();
        return;
      }
      const exited = once(runner.worker, "exit");
      const timer = setTimeout(() => void runner.worker.terminate(), 5000);
      runner.worker.postMessage({ type: "stop" } satisfies RunnerCommand);
      await exited;
      clearTimeout(timer);
    }));
  }

  #spawn(device: string): Runner {
    const worker = new Worker(this.options.workerUrl ?? new URL("./worker.js", import.meta.url), { workerData: { ...this.options.engine, device } satisfies EngineConfig });
    const runner: Runner = { device, worker, current: null, ready: false, stopping: false };
    worker.on("message", (message: RunnerMessage) => this.#onMessage(runner, message));
    worker.on("error", (error) => this.#onExit(runner, `the engine worker failed: ${error.message}`));
    worker.on("exit", (code) => this.#onExit(runner, `the engine worker stopped (exit code ${code})`));
    return runner;
  }

  #onMessage(runner: Runner, message: RunnerMessage): void {
    switch (message.type) {
      case "ready":
        runner.ready = true;
        this.#pump();
        return;
      case "progress":
        this.emit("progress", message.jobId, message.label, message.done, message.total);
        return;
      case "done":
      case "failed":
        if (runner.current?.jobId !== message.jobId) return;
        runner.current = null;
        if (message.type === "done") this.emit("done", message.jobId, message.result satisfies JobResult);
        else this.emit("failed", message.jobId, message.message);
        this.#pump();
        return;
    }
  }

  #onExit(runner: Runner, reason: string): void {
    const index = this.#runners.indexOf(runner);
    if (index < 0 || runner.stopping || this.#closed) return;
    const job = runner.current;
    runner.current = null;
    if (job) this.emit("failed", job.jobId, `${reason} while running this job`);
    this.#runners[index] = this.#spawn(runner.device);
  }

  #pump(): void {
    let moved = false;
    for (const runner of this.#runners) {
      if (!runner.ready || runner.current !== null || this.#waiting.length === 0) continue;
      const job = this.#waiting.shift()!;
      runner.current = job;
      moved = true;
      this.emit("started", job.jobId);
      runner.worker.postMessage({ type: "run", job } satisfies RunnerCommand);
    }
    if (moved) this.emit("moved");
  }
}
