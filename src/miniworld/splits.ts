/**
 * Which identities are for what. Every integer id ≥ 0 is a person of the world; the splits are fixed id ranges
 * so they are disjoint by construction and need no file:
 *
 *   pretraining    ids      0 – 49,999   (50,000)  train the base text-to-image model
 *   hypernetwork   ids 50,000 – 59,999   (10,000)  pre-optimised LiDB weights + hypernetwork training
 *   held-out       ids 60,000 – 60,999    (1,000)  evaluation only: never seen by any training
 *
 * Ids from 61,000 up belong to no split (free for experiments); the world itself is unbounded.
 */
export const SPLITS = {
  pretraining: { first: 0, count: 50_000 },
  hypernetwork: { first: 50_000, count: 10_000 },
  "held-out": { first: 60_000, count: 1_000 },
} as const;

export type SplitName = keyof typeof SPLITS;
export const SPLIT_NAMES = Object.keys(SPLITS) as SplitName[];

/** The split an identity belongs to, or undefined beyond the assigned ranges. */
export function splitOf(id: number): SplitName | undefined {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`identity ids are integers ≥ 0, got ${id}`);
  for (const name of SPLIT_NAMES) {
    const { first, count } = SPLITS[name];
    if (id >= first && id < first + count) return name;
  }
  return undefined;
}

/** The ids of a split, in order (the first `count` of them if given). */
export function splitIds(name: SplitName, count?: number): number[] {
  const split = SPLITS[name];
  if (!split) throw new Error(`unknown split '${String(name)}'; known: ${SPLIT_NAMES.join(", ")}`);
  const n = count === undefined ? split.count : count;
  if (!Number.isInteger(n) || n < 0 || n > split.count) throw new Error(`split '${name}' has ${split.count} ids, asked for ${count}`);
  return Array.from({ length: n }, (_, i) => split.first + i);
}
