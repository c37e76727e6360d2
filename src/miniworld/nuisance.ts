/**
 * Per-image nuisance: what changes between two photos of the same person and says nothing about who it is.
 *
 * Pose (in-plane rotation ±8°, scale ±8 %, a small shift, a slight head turn), lighting (brightness, colour
 * temperature, direction and strength of the key light), expression, clothing and background tint. Drawn
 * from (world seed, identity id, nuisance seed) on a stream of its own, so it can never change an identity
 * trait; without a seed, the canonical nuisance (frontal, neutral, even light) is used.
 */
import { Random } from "./random.js";
import { along, type Rgb } from "./svg.js";

export const EXPRESSIONS = ["neutral", "smile", "surprised", "open", "angry"] as const;
export type Expression = (typeof EXPRESSIONS)[number];

export interface Nuisance {
  /** In-plane rotation in degrees (±8), scale factor (0.92–1.08), shift in view units (±3). */
  rotation: number;
  scale: number;
  shiftX: number;
  shiftY: number;
  /** Head turn −1 … 1: features slide towards one side, the far ear hides. */
  yaw: number;
  /** Overall brightness factor (0.85–1.15) and colour temperature −1 cool … 1 warm. */
  brightness: number;
  temperature: number;
  /** Key light: direction in degrees (0 = from the right, 90 = from below, 180 = from the left), strength 0–1. */
  lightAngle: number;
  lightStrength: number;
  expression: Expression;
  clothing: Rgb;
  /** Studio backdrop colour (plain style). */
  backdrop: Rgb;
  /** Seeds the details of scenes and effects (star positions, lit windows, paper grain). */
  detailSeed: number;
}

/** Frontal, neutral, even light: the reference photo of every identity. */
export const CANONICAL_NUISANCE: Readonly<Nuisance> = Object.freeze({
  rotation: 0,
  scale: 1,
  shiftX: 0,
  shiftY: 0,
  yaw: 0,
  brightness: 1,
  temperature: 0,
  lightAngle: 225,
  lightStrength: 0.5,
  expression: "neutral",
  clothing: [70, 86, 112] as Rgb,
  backdrop: [196, 200, 206] as Rgb,
  detailSeed: 0,
});

const CLOTHING: readonly Rgb[] = [
  [40, 44, 52], [70, 86, 112], [150, 40, 44], [232, 232, 228], [60, 110, 70], [196, 160, 90], [96, 60, 120],
  [30, 90, 150], [200, 110, 60], [128, 128, 128],
];
const BACKDROPS: readonly Rgb[] = [
  [196, 200, 206], [214, 206, 190], [176, 190, 200], [206, 196, 206], [160, 166, 170], [222, 222, 218],
  [188, 204, 192],
];

/** The nuisance of image `nuisanceSeed` of identity `id` (canonical when the seed is undefined). */
export function nuisanceFor(id: number, nuisanceSeed: number | undefined, worldSeed: number): Nuisance {
  if (nuisanceSeed === undefined) return { ...CANONICAL_NUISANCE };
  if (!Number.isSafeInteger(nuisanceSeed) || nuisanceSeed < 0) throw new Error(`nuisanceSeed must be an integer ≥ 0, got ${nuisanceSeed}`);
  const r = Random.of("nuisance", worldSeed, id, nuisanceSeed);
  return {
    rotation: r.uniform(-8, 8),
    scale: r.uniform(0.92, 1.08),
    shiftX: r.uniform(-3, 3),
    shiftY: r.uniform(-3, 3),
    yaw: r.uniform(-1, 1),
    brightness: r.uniform(0.85, 1.15),
    temperature: r.uniform(-1, 1),
    lightAngle: r.uniform(180, 360),
    lightStrength: r.uniform(0.2, 0.9),
    expression: r.weighted([["neutral", 40], ["smile", 30], ["surprised", 10], ["open", 12], ["angry", 8]] as const),
    clothing: r.pick(CLOTHING),
    backdrop: along([r.pick(BACKDROPS), r.pick(BACKDROPS)], r.next()),
    detailSeed: r.nextUint32(),
  };
}

/** The same photo without the pose change (frontal, centred, no turn): lighting, expression and clothes only. */
export function withoutPose(nuisance: Nuisance): Nuisance {
  return { ...nuisance, rotation: 0, scale: 1, shiftX: 0, shiftY: 0, yaw: 0 };
}
