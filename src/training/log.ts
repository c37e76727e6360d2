/**
 * The training log: one JSON object per line (JSONL), appended as the loop runs, the same for every trainer:
 *
 *     {"time":"2026-12-05T06:00:00.000Z","job":"vae","step":120,"loss":0.0812,"lr":0.0005,"seconds":1.93}
 *     {"time":"…","job":"hypernetwork","step":7,"loss":2.41,"lr":0.0001,"seconds":0.8,"terms":{"diffusion":1.1,"weight":0.1}}
 *     {"time":"…","job":"alice","event":"resumed","step":100}
 *     {"time":"…","job":"alice","event":"finished","step":400,"loss":0.0123}
 *
 * Lines are appended (a kill can tear at most the last one, which readers skip). A step re-run after a resume
 * from an earlier checkpoint appears again: for each (job, step) the last line is the one that counts.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

export interface StepLine {
  job: string;
  step: number;
  loss: number;
  lr: number;
  /** Wall-clock seconds of the loop step that included this job's step. */
  seconds: number;
  /** Named parts of the loss, when the trainer reports them (e.g. diffusion and weight terms). */
  terms?: Record<string, number>;
}

export interface EventLine {
  job: string;
  event: "started" | "resumed" | "finished";
  step: number;
  loss?: number;
}

export type LogLine = (StepLine | EventLine) & { time: string };

export class TrainingLog {
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
  }

  write(line: StepLine | EventLine): void {
    appendFileSync(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
  }
}

/** A log's lines, skipping a torn last line; for each (job, step) of step lines, the last one. */
export function readTrainingLog(file: string): { steps: (StepLine & { time: string })[]; events: (EventLine & { time: string })[] } {
  if (!existsSync(file)) return { steps: [], events: [] };
  const lines = readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "");
  const parsed: LogLine[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      parsed.push(JSON.parse(line) as LogLine);
    } catch (error) {
      if (i < lines.length - 1) throw new Error(`${file}: line ${i + 1} is not JSON (${(error as Error).message})`);
    }
  }
  const steps = new Map<string, StepLine & { time: string }>();
  const events: (EventLine & { time: string })[] = [];
  for (const line of parsed) {
    if ("event" in line) events.push(line);
    else steps.set(`${line.job}\0${line.step}`, line);
  }
  return { steps: [...steps.values()], events };
}
