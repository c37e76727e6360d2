/**
 * Where everything of a face goes, in view-box units (a 100 × 100 box): the identity's normalised traits
 * mapped to sizes and positions, adjusted by the expression and head turn of the nuisance.
 *
 * The ranges are chosen for 64 × 64 pixels (0.64 px per unit): the head spans ~40–50 units, an eye 6–9
 * units, so every trait moves whole pixels. Accessories (hats, glasses, ...) place themselves from this too.
 */
import type { Identity } from "./identity.js";
import type { Expression, Nuisance } from "./nuisance.js";
import { mirror, type Point } from "./svg.js";

export interface Geometry {
  /** Centre of the head, half-width and half-height. */
  cx: number;
  cy: number;
  width: number;
  height: number;
  /** Closed outline of the face (skin), clockwise from the top of the skull. */
  outline: Point[];
  /** Horizontal feature shift from the head turn. */
  turn: number;
  eyes: {
    y: number;
    /** x of the left (screen) and right eye centres. */
    left: number;
    right: number;
    halfWidth: number;
    halfHeight: number;
    /** Degrees, positive = outer corners up. */
    tilt: number;
  };
  brows: { y: number; thickness: number; innerDrop: number };
  nose: { x: number; top: number; tip: number; halfWidth: number };
  mouth: { x: number; y: number; halfWidth: number; upperLip: number; lowerLip: number };
  ears: { y: number; height: number; left: number; right: number };
  /** y of the top of the skull (without hair) and of the chin. */
  skullTop: number;
  chin: number;
  /** y of the hairline at the middle of the forehead. */
  hairline: number;
  expression: Expression;
}

/** Child proportions ("as a child"): a rounder, shorter face with big eyes set lower, small nose and mouth. */
export interface Proportions {
  child: boolean;
}

export function faceGeometry(identity: Identity, nuisance: Nuisance, proportions: Proportions = { child: false }): Geometry {
  const { face, eyes, brows, nose, mouth, ears } = identity;
  const child = proportions.child;
  const cx = 50;
  const cy = child ? 57 : 54;
  const width = (19 + 5.5 * face.width) * (child ? 1.02 : 1);
  const height = (25.5 + 5.5 * face.length) * (child ? 0.82 : 1);
  const jaw = child ? 0.5 + 0.25 * face.jaw : face.jaw;
  const chin = child ? 0.65 + 0.3 * face.chin : face.chin;

  const right: Point[] = [
    [cx + width * 0.76, cy - height * 0.8],
    [cx + width * 0.98, cy - height * 0.32],
    [cx + width * (0.95 + 0.05 * face.cheekbones), cy + height * 0.08],
    [cx + width * (0.74 + 0.2 * jaw), cy + height * 0.5],
    [cx + width * (0.56 + 0.3 * jaw), cy + height * 0.72],
    [cx + width * (0.14 + 0.26 * chin), cy + height * 0.96],
  ];
  const outline: Point[] = [[cx, cy - height], ...right, [cx, cy + height], ...mirror(right, cx)];

  const expression = nuisance.expression;
  const turn = nuisance.yaw * 2.2;
  const eyeScale = child ? 1.35 : 1;
  const eyeHalfWidth = (3.1 + 1.9 * eyes.size) * eyeScale;
  const open = { neutral: 1, smile: 0.78, surprised: 1.4, open: 1, angry: 0.8 }[expression];
  const eyeHalfHeight = eyeHalfWidth * (0.42 + 0.22 * eyes.openness) * open;
  const eyeY = cy - height * (child ? -0.08 : 0.04) + height * 0.1 * (eyes.height - 0.5);
  const eyeOffset = width * (0.36 + 0.13 * eyes.spacing) * (child ? 1.04 : 1);

  const browLift = { neutral: 0, smile: 0.3, surprised: 2.4, open: 0.6, angry: -0.8 }[expression];
  const browY = eyeY - eyeHalfHeight / open - (2.2 + 1.8 * brows.gap) - browLift;

  const noseScale = child ? 0.6 : 1;
  const noseTip = eyeY + height * (0.26 + 0.15 * nose.length) * (child ? 0.7 : 1);
  const noseHalfWidth = (1.9 + 2.8 * nose.width) * noseScale;

  const chinY = cy + height;
  const mouthY = noseTip + (chinY - noseTip) * (0.3 + 0.12 * mouth.height) + (expression === "surprised" ? 0.8 : 0);
  const mouthHalfWidth = width * (0.22 + 0.22 * mouth.width) * (child ? 0.72 : 1);

  const earHeight = (5.8 + 3.6 * ears.size) * (child ? 0.85 : 1);
  const earOut = width * 0.95 + 1.4 * ears.protrusion;
  return {
    cx, cy, width, height, outline, turn,
    eyes: {
      y: eyeY,
      left: cx - eyeOffset + turn,
      right: cx + eyeOffset + turn,
      halfWidth: eyeHalfWidth,
      halfHeight: eyeHalfHeight,
      tilt: eyes.tilt * 7,
    },
    brows: { y: browY, thickness: (0.8 + 2.3 * brows.thickness) * (child ? 0.7 : 1), innerDrop: expression === "angry" ? 2.6 : 0 },
    nose: { x: cx + turn * 1.5, top: eyeY + 1, tip: noseTip, halfWidth: noseHalfWidth },
    mouth: {
      x: cx + turn * 1.1,
      y: mouthY,
      halfWidth: mouthHalfWidth,
      upperLip: 0.7 + 1.0 * mouth.upperLip,
      lowerLip: 1.0 + 1.3 * mouth.lowerLip,
    },
    ears: {
      y: eyeY + height * 0.12,
      height: earHeight,
      // The far ear (the side the features move towards) slides behind the head.
      left: cx - earOut - Math.min(0, turn) * 0.9,
      right: cx + earOut - Math.max(0, turn) * 0.9,
    },
    skullTop: cy - height,
    chin: chinY,
    hairline: cy - height * (0.5 + 0.22 * identity.hair.hairline),
    expression,
  };
}
