/**
 * How distinguishable the world's identities are, measured on rendered pixels: a check that traits are visible
 * at 64 × 64 and that the nuisance does not drown them.
 *
 * For `count` identities: a canonical photo each (the gallery) and `probes` photos with photometric nuisance
 * (lighting, expression, clothes, backdrop; no pose change, since pixel distances are not pose-invariant).
 * Distances are RMS differences of the 8-bit RGB values. Reported:
 *  - the distance from each canonical photo to the nearest OTHER identity's canonical photo;
 *  - the largest distance between an identity's canonical photo and its own nuisance photos;
 *  - `separated`: the fraction of identities whose nearest other identity is farther than their own farthest
 *    nuisance photo (the "distinct identities are farther apart than two photos of one person");
 *  - `identified`: the fraction of nuisance photos whose nearest gallery photo is their own identity (chance
 *    is 1 / count).
 * Pairwise distances run on the engine (one matrix product), so 2,000 identities take seconds.
 */
import { fromBytes, noGrad, tidy, type Tensor } from "../engine/index.js";
import type { RgbImage } from "../pipeline/images.js";
import { identityFromId, WORLD_SEED } from "./identity.js";
import { CANONICAL_NUISANCE, nuisanceFor, withoutPose } from "./nuisance.js";
import { renderIdentity } from "./render.js";

export interface DistinguishabilityOptions {
  /** Identities measured: firstId … firstId + count − 1. */
  firstId?: number;
  count: number;
  /** Nuisance photos per identity. */
  probes?: number;
  size?: number;
  worldSeed?: number;
  /** Keep the pose changes in the probes too (much harder for a pixel metric). */
  withPose?: boolean;
  /**
   * Compare only the face (the central box where the head is: 25–75 % across, 20–80 % down), each crop
   * normalised to zero mean and unit variance, so the backdrop, clothes and overall brightness (nuisance by
   * design) do not count. Default false: whole images, raw values.
   */
  faceOnly?: boolean;
}

export interface Quantiles {
  min: number;
  p1: number;
  p5: number;
  median: number;
  p95: number;
  max: number;
}

export interface DistinguishabilityReport {
  count: number;
  probes: number;
  nearestOther: Quantiles;
  ownNuisanceMax: Quantiles;
  separated: number;
  identified: number;
}

function quantiles(values: number[]): Quantiles {
  const sorted = values.slice().sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
  return { min: sorted[0]!, p1: at(0.01), p5: at(0.05), median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1]! };
}

function stackImages(images: readonly RgbImage[], faceOnly: boolean): Tensor {
  const { width, height } = images[0]!;
  const per = images[0]!.data.length;
  const all = new Uint8Array(images.length * per);
  images.forEach((image, i) => all.set(image.data, i * per));
  const pixels = fromBytes(all, "uint8", [images.length, height, width, 3]).float();
  if (!faceOnly) return pixels.reshape(images.length, per);
  const x0 = Math.round(width * 0.25);
  const y0 = Math.round(height * 0.2);
  const crop = pixels.narrow(2, x0, Math.round(width * 0.75) - x0).narrow(1, y0, Math.round(height * 0.8) - y0).reshape(images.length, -1);
  const centred = crop.sub(crop.mean(1, true));
  // Unit variance, then × 64 so the distances stay on a scale comparable to 8-bit values.
  return centred.div(centred.std(1, { keepdim: true }).add(1e-6)).mul(64);
}

/** RMS distances between the rows of a and b: (rows a) × (rows b), as a JS array of rows. */
function rmsDistances(a: Tensor, b: Tensor): number[][] {
  return noGrad(() => tidy(() => {
    const d = a.size(1);
    const squared = a.square().sum(1, true).add(b.square().sum(1, true).mT()).sub(a.matmul(b.mT()).mul(2)).clamp(0, Infinity);
    return squared.div(d).sqrt().toArray() as number[][];
  }));
}

async function renderAll(jobs: (() => Promise<RgbImage>)[], concurrency = 8): Promise<RgbImage[]> {
  const out = new Array<RgbImage>(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

export async function measureDistinguishability(options: DistinguishabilityOptions): Promise<DistinguishabilityReport> {
  const { count, firstId = 0, probes = 3, size = 64, worldSeed = WORLD_SEED, withPose = false, faceOnly = false } = options;
  if (count < 2) throw new Error(`measureDistinguishability needs at least 2 identities, got ${count}`);
  const ids = Array.from({ length: count }, (_, i) => firstId + i);
  const gallery = await renderAll(ids.map((id) => () => renderIdentity(identityFromId(id, worldSeed), { ...CANONICAL_NUISANCE }, [], size)));
  const probeImages = await renderAll(ids.flatMap((id) => Array.from({ length: probes }, (_, k) => () => {
    const nuisance = nuisanceFor(id, k + 1, worldSeed);
    return renderIdentity(identityFromId(id, worldSeed), withPose ? nuisance : withoutPose(nuisance), [], size);
  })));
  const [between, probeToGallery] = tidy(() => {
    const g = stackImages(gallery, faceOnly);
    const p = stackImages(probeImages, faceOnly);
    return [rmsDistances(g, g), rmsDistances(p, g)];
  });
  const nearestOther = ids.map((_, i) => Math.min(...between[i]!.filter((_, j) => j !== i)));
  const ownMax = ids.map((_, i) => Math.max(...Array.from({ length: probes }, (_, k) => probeToGallery[i * probes + k]![i]!)));
  let identified = 0;
  probeToGallery.forEach((row, r) => {
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j]! < row[best]!) best = j;
    if (best === Math.floor(r / probes)) identified++;
  });
  return {
    count,
    probes,
    nearestOther: quantiles(nearestOther),
    ownNuisanceMax: quantiles(ownMax),
    separated: nearestOther.filter((d, i) => d > ownMax[i]!).length / count,
    identified: identified / probeToGallery.length,
  };
}

/**
 * The coarse trait cell of an identity: each categorical trait, and each continuous trait cut into three bins
 * (low, middle, high). Each step between neighbouring bins changes pixels at 64 × 64 (identity.test.ts renders
 * them), so identities in different cells look different. There are CELL_COUNT cells in all.
 */
export const CELL_TRAITS = ["face.width", "face.length", "face.jaw", "eyes.size", "eyes.spacing", "brows.thickness", "nose.length"] as const;

/**
 * sex 2 × hair colour 15 × hair style 16 × eye colour 8 × skin 6 × facial hair 6 × 3^7 × freckles 2 × moles 3.
 * (Nose width, mouth width, lips, ears, brow shape, hairline, volume, ... vary too, but move fewer pixels per
 * step at 64 × 64, so they are not counted.)
 */
export const CELL_COUNT = 2 * 15 * 16 * 8 * 6 * 6 * 3 ** CELL_TRAITS.length * 2 * 3;

export function traitCell(identity: ReturnType<typeof identityFromId>): string {
  const bin = (v: number): number => Math.min(2, Math.floor(v * 3));
  const get = (key: string): number => key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], identity) as number;
  return [
    identity.sex, identity.hair.colour, identity.hair.style, identity.eyes.colour, Math.min(5, Math.floor(identity.skin.tone * 6)),
    identity.facialHair.kind, ...CELL_TRAITS.map((key) => bin(get(key))), identity.marks.freckles > 0 ? 1 : 0, Math.min(2, identity.marks.moles.length),
  ].join("|");
}
