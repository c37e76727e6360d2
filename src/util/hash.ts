/**
 * Seed mixing shared by every layer: a 32-bit hash of integers (to derive independent seeds, e.g. one per
 * training step) and a string's 32-bit id (to name streams readably). Integer operations only (Math.imul,
 * shifts), so the same inputs give the same numbers on every machine.
 */

/** Mixes 32-bit integers into one well-spread 32-bit value (murmur3's finaliser over a running combination). */
export function hash32(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const value of values) {
    if (!Number.isSafeInteger(value)) throw new Error(`hash32 takes safe integers, got ${value}`);
    // Both 32-bit halves of the value take part, so ids beyond 2^32 do not alias smaller ones.
    const low = value >>> 0;
    const high = Math.floor(value / 4294967296) >>> 0;
    for (const word of [low, high]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h = (h << 13) | (h >>> 19);
      h = Math.imul(h, 5) + 0xe6546b64;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A string as a 32-bit number (FNV-1a), to name hash streams ("hair", "eyes", ...) readably. */
export function streamId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
