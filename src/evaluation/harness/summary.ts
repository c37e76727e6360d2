/**
 * The evaluation's results (HyperDreamBooth §5, Table 1's columns in the mini-world's roles): per method, the means of
 * identity similarity (Face Rec), style accuracy (CLIP-T) and image similarity (DINO / CLIP-I) over identities ×
 * prompts × seeds with Student-t 95 % confidence intervals, overall and per prompt; the seconds per person (mean and
 * CI over identities); and every entry (image path and scores) for whoever wants to look again. This is what
 * results.json holds and what the HTML report and the blind page are drawn from.
 */
import type { Provenance } from "../../util/provenance.js";
import { meanConfidenceInterval } from "../metrics.js";
import type { EntryScores } from "./cache.js";
import type { EvalPrompt } from "./prompts.js";

export const RESULTS_FORMAT = "hdb-eval-results/1";

/** A mean with its 95 % CI; with a single value there is no interval (halfWidth null). */
export interface Summary {
  mean: number;
  halfWidth: number | null;
  low: number | null;
  high: number | null;
  count: number;
}

export function summarise(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  if (values.length === 1) return { mean: values[0]!, halfWidth: null, low: null, high: null, count: 1 };
  const ci = meanConfidenceInterval(values);
  return { mean: ci.mean, halfWidth: ci.halfWidth, low: ci.low, high: ci.high, count: ci.count };
}

/** One image of the evaluation. */
export interface ResultEntry {
  method: string;
  identity: number;
  prompt: string;
  seed: number;
  /** The PNG, relative to the output folder. */
  image: string;
  scores: EntryScores;
}

export interface ScoreSummaries {
  identity: Summary | null;
  style: Summary | null;
  imageSimilarity: Summary | null;
}

export interface MethodResult extends ScoreSummaries {
  name: string;
  description: string;
  /** The cache key (name + settings hash). */
  key: string;
  recipe: unknown;
  /** Over identities; null for methods that personalise nobody (base, world). */
  secondsPerPerson: Summary | null;
  /** Mean seconds per phase over identities (Personalizer methods). */
  phases: Record<string, number>;
}

export interface PromptResult {
  prompt: string;
  expectedStyle: string;
  methods: Record<string, ScoreSummaries>;
}

export interface EvalResults {
  format: typeof RESULTS_FORMAT;
  identities: number[];
  prompts: EvalPrompt[];
  seeds: number[];
  generation: Record<string, unknown>;
  /** The reference photo of each identity, relative to the output folder. */
  references: Record<string, string>;
  methods: MethodResult[];
  perPrompt: PromptResult[];
  entries: ResultEntry[];
  /** What this run made and what it found cached. */
  counts: RunCounts;
  provenance: Provenance | null;
}

export interface RunCounts {
  /** Person files made / found cached. */
  filesMade: number;
  filesReused: number;
  /** Images generated (or rendered) / found cached; cached images whose scores came from other networks, rescored. */
  imagesMade: number;
  imagesReused: number;
  rescored: number;
}

function scoreSummaries(entries: readonly ResultEntry[]): ScoreSummaries {
  return {
    identity: summarise(entries.map((e) => e.scores.identity)),
    style: summarise(entries.map((e) => e.scores.style)),
    imageSimilarity: summarise(entries.map((e) => e.scores.imageSimilarity)),
  };
}

export interface MethodInfo {
  name: string;
  description: string;
  key: string;
  recipe: unknown;
  /** Per identity: seconds and phases of making its file (absent for base and world). */
  timings: { seconds: number; phases: Record<string, number> }[];
}

/** The results of `entries` for `methods`, in their order, overall and per prompt. */
export function summariseResults(input: Omit<EvalResults, "format" | "methods" | "perPrompt"> & { methodInfo: readonly MethodInfo[] }): EvalResults {
  const { methodInfo, ...rest } = input;
  const methods = methodInfo.map((m): MethodResult => {
    const phases: Record<string, number> = {};
    for (const t of m.timings) for (const [phase, s] of Object.entries(t.phases)) phases[phase] = (phases[phase] ?? 0) + s / m.timings.length;
    return {
      name: m.name, description: m.description, key: m.key, recipe: m.recipe,
      ...scoreSummaries(input.entries.filter((e) => e.method === m.name)),
      secondsPerPerson: summarise(m.timings.map((t) => t.seconds)), phases,
    };
  });
  const perPrompt = input.prompts.map((p): PromptResult => ({
    prompt: p.text, expectedStyle: p.expectedStyle,
    methods: Object.fromEntries(methodInfo.map((m) => [m.name, scoreSummaries(input.entries.filter((e) => e.method === m.name && e.prompt === p.text))])),
  }));
  return { format: RESULTS_FORMAT, ...rest, methods, perPrompt };
}

/** "0.412 ± 0.031" (or just the mean when there is no interval; "–" when there is nothing). */
export function formatSummary(summary: Summary | null, digits = 3): string {
  if (summary === null) return "–";
  return summary.halfWidth === null ? summary.mean.toFixed(digits) : `${summary.mean.toFixed(digits)} ± ${summary.halfWidth.toFixed(digits)}`;
}
