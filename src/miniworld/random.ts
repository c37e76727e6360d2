/**
 * Seeded randomness for the mini-world: a 32-bit hash to derive independent streams and a small PRNG.
 *
 * Everything the world draws comes from integers (world seed, identity id, nuisance seed, caption seed) through
 * these two pieces, so the same inputs give the same faces on every machine. Plain JS numbers are enough here:
 * this is procedural drawing, not tensor maths, and only integer operations (Math.imul, shifts) touch the
 * state; the float in [0, 1) is the top 32 bits divided by 2^32, exact in a double.
 */

import { hash32, streamId } from "../util/hash.js";

export { hash32, streamId };

/** mulberry32: a tiny PRNG with a 32-bit state; ample for drawing parameters. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A random stream derived from several integers and a name: independent streams for independent traits. */
  static of(name: string, ...values: number[]): Random {
    return new Random(hash32(streamId(name), ...values));
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** An integer in [0, count). */
  int(count: number): number {
    return Math.floor(this.next() * count);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One item, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Random.pick needs at least one item");
    return items[this.int(items.length)]!;
  }

  /** One item with probability proportional to its weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, weight] of items) total += weight;
    let r = this.next() * total;
    for (const [item, weight] of items) {
      r -= weight;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  }

  /** Roughly bell-shaped in [-1, 1] (mean of three uniforms, rescaled): traits cluster near typical values. */
  bell(): number {
    return (this.next() + this.next() + this.next() - 1.5) / 1.5;
  }
}
