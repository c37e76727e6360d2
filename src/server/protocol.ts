/**
 * The job protocol between the server and whatever runs engine work (a worker thread here; a worker process on
 * another queue backend would speak the same): what a job asks for, what the runner reports while it works and
 * what it answers at the end. Plain JSON-compatible objects, so they cross threads, processes and queues as they are.
 */

/** What the engine runs on, fixed for a runner's lifetime. */
export interface EngineConfig {
  /** The base model's diffusers folder. */
  model: string;
  /** The HyperNetwork folder trained for that model. */
  hypernetwork: string;
  device: string;
  /** CPU threads for the engine (default: libtorch's). */
  threads?: number;
}

/** Personalisation settings a request may choose (src/personalize/config.ts holds their meaning and defaults). */
export interface PersonalizeJobSettings {
  steps: number;
  rank: number;
  learningRate: number;
  seed: number;
  rounds?: number;
}

export interface PersonalizeSpec {
  kind: "personalize";
  jobId: string;
  /** The re-encoded photos (absolute paths). */
  photos: string[];
  /** The folder to write the model's files into (emptied by the caller). */
  outDir: string;
  settings: PersonalizeJobSettings;
}

/** What a generation draws, as the API takes it. */
export interface GenerationSettings {
  /** Multiplies the personalised ΔW (1 = as trained). */
  weight: number;
  prompt: string;
  negativePrompt: string;
  seed: number;
  steps: number;
  guidance: number;
  images: number;
}

export interface GenerateSpec extends GenerationSettings {
  kind: "generate";
  jobId: string;
  outDir: string;
  /** A personalised model's LiDB file, or null for the base model. */
  lidb: string | null;
}

export type JobSpec = PersonalizeSpec | GenerateSpec;

/** The files a personalisation writes into its folder. */
export const MODEL_FILES = {
  lidb: "person.lidb.safetensors",
  "lora-diffusers": "pytorch_lora_weights.safetensors",
  "lora-kohya": "person.kohya.safetensors",
} as const;

export type ModelFileKind = keyof typeof MODEL_FILES;

export interface PersonalizeResult {
  kind: "personalize";
  bytes: Record<ModelFileKind, number>;
  identifier: string;
  times: Record<string, number>;
  finalLoss: number | null;
  settings: Record<string, unknown>;
}

export interface GenerateResult {
  kind: "generate";
  /** Image file names in the output folder, in order. */
  images: string[];
  seconds: number;
}

export type JobResult = PersonalizeResult | GenerateResult;

/** What a runner reports (worker → server). */
export type RunnerMessage =
  | { type: "ready" }
  | { type: "progress"; jobId: string; label: string; done: number; total: number }
  | { type: "done"; jobId: string; result: JobResult }
  | { type: "failed"; jobId: string; message: string };

/** What a runner is told (server → worker). */
export type RunnerCommand = { type: "run"; job: JobSpec } | { type: "stop" };
