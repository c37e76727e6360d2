/**
 * HyperDreamBooth's Tables 1–3 (§5) from an evaluation's results, with the question the paper answers in each: does
 * Ours come out above the other row?
 *
 *   Table 1  Ours vs DreamBooth (LiDB, and DreamBooth-LoRA)                 the paper: ours above on all four metrics
 *   Table 2  Ours vs DreamBooth-Agg (400 and 40 steps at a higher rate)     the paper: ours above
 *   Table 3  Ours vs No Hyper, Only Hyper, k = 1 (the ablations)            the paper: ours above
 *
 * Every comparison is paired: both methods personalised the same people from the same photo and drew the same prompts
 * with the same seeds, so the question is answered on the per-person difference (the person's mean over prompts and
 * seeds, ours minus the other), with a Student-t 95 % CI over people. People, not images, are the unit: the images of
 * one person are not independent draws. The verdict per metric:
 *
 *   holds      the difference's CI lies above 0 (ours above, CIs apart)
 *   overlaps   the CI contains 0 (no difference shown at this many people)
 *   reversed   the CI lies below 0 (the other method above)
 *
 * A table is written with the rows the run has; a row the run lacks is named as missing, never filled in.
 */
import { meanConfidenceInterval } from "../metrics.js";
import type { EntryScores } from "./cache.js";
import { formatSummary, type EvalResults, type Summary } from "./summary.js";

export const PAPER_TABLES_FORMAT = "hdb-paper-tables/1";

/** The scores in the paper's roles: Face Rec, DINO / CLIP-I (one encoder here), CLIP-T. */
export const TABLE_METRICS = [
  { key: "identity", label: "Face Rec (identity network)" },
  { key: "imageSimilarity", label: "DINO / CLIP-I (fidelity encoder)" },
  { key: "style", label: "CLIP-T (style followed)" },
] as const satisfies readonly { key: keyof EntryScores; label: string }[];
export type TableMetric = (typeof TABLE_METRICS)[number]["key"];

export interface PaperTableSpec {
  id: 1 | 2 | 3;
  title: string;
  /** The methods compared with ours, in the paper's order. */
  others: string[];
  /** The paper's claim, in words. */
  claim: string;
}

export const PAPER_TABLES: readonly PaperTableSpec[] = [
  { id: 1, title: "Table 1: Ours vs DreamBooth", others: ["dreambooth", "lora"], claim: "ours above DreamBooth on Face Rec, DINO, CLIP-I and CLIP-T (0.655 / 0.473 / 0.577 / 0.286 vs 0.618 / 0.441 / 0.546 / 0.282)" },
  { id: 2, title: "Table 2: Ours vs aggressive DreamBooth", others: ["dreambooth-agg-400", "dreambooth-agg-40"], claim: "DreamBooth run faster at a higher learning rate (400 or 40 steps) does not reach ours" },
  { id: 3, title: "Table 3: ablations", others: ["no-hyper", "only-hyper", "k1"], claim: "each part matters: ours above No Hyper (no prediction), Only Hyper (no fine-tuning) and k = 1 (one refinement round)" },
];

export type Verdict = "holds" | "overlaps" | "reversed";

export interface PairedDifference {
  metric: TableMetric;
  /** Ours minus the other, per person, over people. */
  mean: number;
  low: number;
  high: number;
  people: number;
  verdict: Verdict;
}

export interface TableRow {
  method: string;
  description: string;
  scores: Record<TableMetric, Summary | null>;
  secondsPerPerson: Summary | null;
  /** Against ours (absent on ours' own row). */
  differences?: PairedDifference[];
}

export interface PaperTable extends PaperTableSpec {
  rows: TableRow[];
  /** Methods of the table that the run did not evaluate. */
  missing: string[];
}

export interface PaperTables {
  format: typeof PAPER_TABLES_FORMAT;
  tables: PaperTable[];
}

/** Per person: the mean of `metric` over that person's images of `method`. */
function perPersonMeans(results: EvalResults, method: string, metric: TableMetric): Map<number, number> {
  const sums = new Map<number, { sum: number; n: number }>();
  for (const e of results.entries) {
    if (e.method !== method) continue;
    const s = sums.get(e.identity) ?? { sum: 0, n: 0 };
    s.sum += e.scores[metric];
    s.n++;
    sums.set(e.identity, s);
  }
  return new Map([...sums].map(([id, s]) => [id, s.sum / s.n]));
}

/** Ours minus `other` on `metric`, paired by person; null with fewer than 2 people in common. */
export function pairedDifference(results: EvalResults, other: string, metric: TableMetric): PairedDifference | null {
  const ours = perPersonMeans(results, "ours", metric);
  const theirs = perPersonMeans(results, other, metric);
  const differences = [...ours].filter(([id]) => theirs.has(id)).map(([id, value]) => value - theirs.get(id)!);
  if (differences.length < 2) return null;
  const ci = meanConfidenceInterval(differences);
  // A difference of exactly zero everywhere (e.g. two methods that drew the same images) overlaps 0.
  const verdict: Verdict = ci.low > 0 ? "holds" : ci.high < 0 ? "reversed" : "overlaps";
  return { metric, mean: ci.mean, low: ci.low, high: ci.high, people: differences.length, verdict };
}

/** The three tables from a run's results (a run without ours has nothing to compare: every table lists it missing). */
export function paperTables(results: EvalResults): PaperTables {
  const byName = new Map(results.methods.map((m) => [m.name, m]));
  const row = (name: string, withDifferences: boolean): TableRow => {
    const m = byName.get(name)!;
    const differences = withDifferences && byName.has("ours")
      ? TABLE_METRICS.map((metric) => pairedDifference(results, name, metric.key)).filter((d): d is PairedDifference => d !== null)
      : undefined;
    return {
      method: name, description: m.description, secondsPerPerson: m.secondsPerPerson,
      scores: { identity: m.identity, imageSimilarity: m.imageSimilarity, style: m.style },
      ...(differences === undefined ? {} : { differences }),
    };
  };
  const tables = PAPER_TABLES.map((spec): PaperTable => {
    const names = ["ours", ...spec.others];
    return { ...spec, rows: names.filter((n) => byName.has(n)).map((n) => row(n, n !== "ours")), missing: names.filter((n) => !byName.has(n)) };
  });
  return { format: PAPER_TABLES_FORMAT, tables };
}

function signed(x: number): string {
  return `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;
}

/** The tables as Markdown: one table per paper table, then each ordering's verdict with its paired CI. */
export function paperTablesMarkdown(tables: PaperTables, header: string): string {
  const lines = [header, ""];
  for (const table of tables.tables) {
    lines.push(`## ${table.title}`, "", `The paper: ${table.claim}.`, "");
    if (table.missing.length > 0) lines.push(`Not in this run: ${table.missing.join(", ")}.`, "");
    if (table.rows.length === 0) continue;
    lines.push(`| method | ${TABLE_METRICS.map((m) => m.label).join(" | ")} | seconds per person |`, `|---|${TABLE_METRICS.map(() => "---").join("|")}|---|`);
    for (const r of table.rows) {
      lines.push(`| ${r.method} | ${TABLE_METRICS.map((m) => formatSummary(r.scores[m.key])).join(" | ")} | ${formatSummary(r.secondsPerPerson, 2)} |`);
    }
    lines.push("");
    for (const r of table.rows) {
      if (r.differences === undefined || r.differences.length === 0) continue;
      const parts = r.differences.map((d) => {
        const label = TABLE_METRICS.find((m) => m.key === d.metric)!.label.replace(/ \(.*\)$/, "");
        return `${label} ${signed(d.mean)} [${signed(d.low)}, ${signed(d.high)}] **${d.verdict}**`;
      });
      lines.push(`- ours − ${r.method} (paired over ${r.differences[0]!.people} people): ${parts.join("; ")}`);
    }
    lines.push("");
  }
  lines.push("Verdicts: **holds** = ours above, the paired 95 % CI above 0; **overlaps** = the CI contains 0; **reversed** = the other method above, the CI below 0.",
    "Each cell: mean ± 95 % CI half-width over identities × prompts × seeds; seconds per person: mean ± CI over identities, one person at a time.");
  return `${lines.join("\n")}\n`;
}
