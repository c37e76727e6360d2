/**
 * A small seeded generator for choices that are not tensor values (shuffling a page's images, drawing a test's
 * requests): mulberry32, 32 bits of state. Tensor randomness comes from libtorch's generators (src/engine).
 */

/** mulberry32 seeded with `seed`: each call returns the next number in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
