/**
 * The service's storage: jobs and models in one SQLite database (better-sqlite3, WAL journal, synchronous=FULL so
 * a committed row survives a kill -9 and a power cut), their files in the data folder beside it:
 *
 *   <data>/hdb.sqlite                 jobs and models
 *   <data>/inputs/<job id>/photo-N.png the uploaded photos, re-encoded (src/server/uploads.ts), written before the
 *                                     job's row, so every accepted job has whole inputs
 *   <data>/staging/<job id>/          a running job's output, made by the worker; published by one rename
 *   <data>/models/<model id>/         a personalised model: person.lidb.safetensors, both LoRA exports,
 *                                     reference.png, personalize.json
 *   <data>/generations/<job id>/N.png a generation's images
 *
 * A job's row changes state only after its files are in place (publish, then commit), so after any crash a
 * `done` job has whole files and any other job can simply run again (its staging folder is emptied first).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

export type JobKind = "personalize" | "generate";
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface JobRow {
  id: string;
  kind: JobKind;
  status: JobStatus;
  /** The job's parameters (what the worker gets), JSON. */
  params: Record<string, unknown>;
  /** What it made (model id, image names, times), JSON; null until it succeeded. */
  result: Record<string, unknown> | null;
  error: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Times it was started (a restart re-queues a running job: attempts counts the tries). */
  attempts: number;
}

export interface ModelRow {
  id: string;
  jobId: string;
  name: string;
  createdAt: number;
  /** What personalisation reported: times, sizes, settings. */
  summary: Record<string, unknown>;
}

interface RawJob {
  id: string;
  kind: JobKind;
  status: JobStatus;
  params: string;
  result: string | null;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempts: number;
}

interface RawModel {
  id: string;
  job_id: string;
  name: string;
  created_at: number;
  summary: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('personalize', 'generate')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  params TEXT NOT NULL,
  result TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS models (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  job_id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  summary TEXT NOT NULL
);
`;

function jobFromRaw(raw: RawJob): JobRow {
  return {
    id: raw.id, kind: raw.kind, status: raw.status, params: JSON.parse(raw.params) as Record<string, unknown>,
    result: raw.result === null ? null : JSON.parse(raw.result) as Record<string, unknown>, error: raw.error,
    createdAt: raw.created_at, startedAt: raw.started_at, finishedAt: raw.finished_at, attempts: raw.attempts,
  };
}

function modelFromRaw(raw: RawModel): ModelRow {
  return { id: raw.id, jobId: raw.job_id, name: raw.name, createdAt: raw.created_at, summary: JSON.parse(raw.summary) as Record<string, unknown> };
}

/** The data folder's database and paths. */
export class Store {
  readonly db: Database.Database;

  constructor(readonly dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    for (const sub of ["inputs", "staging", "models", "generations"]) mkdirSync(path.join(dataDir, sub), { recursive: true });
    this.db = new Database(path.join(dataDir, "hdb.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
  }

  inputsDir(jobId: string): string {
    return path.join(this.dataDir, "inputs", jobId);
  }

  stagingDir(jobId: string): string {
    return path.join(this.dataDir, "staging", jobId);
  }

  modelDir(modelId: string): string {
    return path.join(this.dataDir, "models", modelId);
  }

  generationDir(jobId: string): string {
    return path.join(this.dataDir, "generations", jobId);
  }

  insertJob(job: { id: string; kind: JobKind; params: Record<string, unknown> }): JobRow {
    this.db.prepare("INSERT INTO jobs (id, kind, status, params, created_at) VALUES (?, ?, 'queued', ?, ?)").run(job.id, job.kind, JSON.stringify(job.params), Date.now());
    return this.job(job.id)!;
  }

  job(id: string): JobRow | null {
    const raw = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as RawJob | undefined;
    return raw ? jobFromRaw(raw) : null;
  }

  /** Newest first. */
  jobs(limit: number): JobRow[] {
    return (this.db.prepare("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?").all(limit) as RawJob[]).map(jobFromRaw);
  }

  /** The jobs a (re)started server must run, oldest first: queued ones and those a stop interrupted. */
  unfinishedJobs(): JobRow[] {
    return (this.db.prepare("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq").all() as RawJob[]).map(jobFromRaw);
  }

  markRunning(id: string): void {
    this.db.prepare("UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ?").run(Date.now(), id);
  }

  markRequeued(id: string): void {
    this.db.prepare("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'running'").run(id);
  }

  markFinished(id: string, status: "succeeded" | "failed" | "cancelled", outcome: { result?: Record<string, unknown>; error?: string }): void {
    this.db.prepare("UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?")
      .run(status, outcome.result === undefined ? null : JSON.stringify(outcome.result), outcome.error ?? null, Date.now(), id);
  }

  /** A personalisation's model and its job's success, in one transaction. */
  finishPersonalization(jobId: string, model: { id: string; name: string; summary: Record<string, unknown> }, result: Record<string, unknown>): void {
    this.db.transaction(() => {
      this.db.prepare("INSERT OR REPLACE INTO models (id, job_id, name, created_at, summary) VALUES (?, ?, ?, ?, ?)")
        .run(model.id, jobId, model.name, Date.now(), JSON.stringify(model.summary));
      this.markFinished(jobId, "succeeded", { result });
    })();
  }

  deleteJob(id: string): boolean {
    return this.db.prepare("DELETE FROM jobs WHERE id = ?").run(id).changes > 0;
  }

  model(id: string): ModelRow | null {
    const raw = this.db.prepare("SELECT * FROM models WHERE id = ?").get(id) as RawModel | undefined;
    return raw ? modelFromRaw(raw) : null;
  }

  /** Newest first. */
  models(limit: number): ModelRow[] {
    return (this.db.prepare("SELECT * FROM models ORDER BY seq DESC LIMIT ?").all(limit) as RawModel[]).map(modelFromRaw);
  }

  deleteModel(id: string): boolean {
    return this.db.prepare("DELETE FROM models WHERE id = ?").run(id).changes > 0;
  }

  close(): void {
    this.db.close();
  }
}
