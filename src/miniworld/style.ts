/**
 * What a style is: a named change to the picture that a prompt phrase asks for ("as a pencil sketch",
 * "wearing sunglasses", "on the beach"), made at the SVG level (scene, accessories, recolouring, face details)
 * and/or as a post-process with sharp (blur, median, greyscale, pixelation). The catalogue is in styles.ts.
 *
 * Styles of different kinds combine (a scene + an accessory + a medium, ...): each kind at most once.
 */
import type sharp from "sharp";
import type { DrawContext } from "./face-svg.js";
import type { Proportions } from "./geometry.js";
import type { Identity } from "./identity.js";
import type { Extras, Look } from "./look.js";
import type { Nuisance } from "./nuisance.js";

export const STYLE_KINDS = ["scene", "medium", "accessory", "expression", "age", "transformation"] as const;
export type StyleKind = (typeof STYLE_KINDS)[number];

/** Caption attributes a style makes invisible or false (a pencil sketch has no colours, sunglasses hide the eyes). */
export type HiddenAttribute = "hair colour" | "eye colour" | "skin" | "facial hair";

export interface Style {
  /** Kebab-case name used by the CLI and the API ("pencil-sketch"). */
  name: string;
  /** The canonical prompt phrase ("as a pencil sketch"); captions end with it. */
  prompt: string;
  kind: StyleKind;
  /** What captions must not mention under this style. */
  hides?: readonly HiddenAttribute[];
  /** Trait changes the style asks for (age), applied before drawing. */
  identity?: (identity: Identity) => Identity;
  /** Nuisance changes (a forced expression, night light). */
  nuisance?: (nuisance: Nuisance) => Nuisance;
  /** Recolouring, outlines, shading. */
  look?: (look: Look) => Look;
  extras?: Partial<Extras>;
  proportions?: Partial<Proportions>;
  /** The scene behind the person (replaces the studio backdrop). */
  background?: (ctx: DrawContext) => string;
  /** Drawn behind the head, inside the pose transform (the back of a hat, a headphone band). */
  behind?: (ctx: DrawContext) => string;
  /** Drawn over the head, inside the pose transform (hats, glasses, scarves). */
  front?: (ctx: DrawContext) => string;
  /** Drawn over the whole picture, outside the pose (snowflakes, bubbles, paper grain). */
  overlay?: (ctx: DrawContext) => string;
  /** An SVG filter (its definition, given a fresh id) applied to everything but the overlay. */
  filter?: (id: string) => string;
  /** Render the SVG at this fraction of the output size first (pixel art), then scale up with `post`. */
  renderScale?: number;
  /** Raster post-processing with sharp; the result is converted to 3-channel sRGB afterwards. */
  post?: (image: sharp.Sharp, size: number) => sharp.Sharp | Promise<sharp.Sharp>;
}
