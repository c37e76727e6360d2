/**
 * Rendering a mini-world face: identity id + nuisance seed + styles → SVG → 8-bit RGB pixels (sharp/librsvg).
 *
 * The SVG is a pure function of its inputs (numbers rounded, no fonts, no text), so the same identity, seed,
 * styles and size give byte-identical pixels wherever the same sharp build runs; test/miniworld pins hashes.
 * Layers, back to front: scene, hair behind the head, shoulders, ears, skin, facial hair, eyes, brows, nose,
 * mouth, style details, hair in front, accessories (all inside the pose transform), then the light (direction,
 * brightness, colour temperature) and the style's overlay over the whole picture.
 */
import sharp from "sharp";
import type { RgbImage } from "../pipeline/images.js";
import { drawBody, drawEars, drawFacialHair, drawSkin, type DrawContext } from "./face-svg.js";
import { drawBrows, drawEyes, drawFaceDetails, drawMouth, drawNose } from "./features-svg.js";
import { faceGeometry } from "./geometry.js";
import { drawHair } from "./hair-svg.js";
import { identityFromId, WORLD_SEED, type Identity } from "./identity.js";
import { Defs, NO_EXTRAS, PHOTO_LOOK, type Extras, type Look } from "./look.js";
import { nuisanceFor, type Nuisance } from "./nuisance.js";
import { element, hex, mix, path, scale } from "./svg.js";
import type { Style } from "./style.js";
import { resolveStyles, type StyleName } from "./styles.js";

/** The head is drawn in geometry.ts's units, then zoomed and lowered so that it fills the frame like a face crop. */
const FRAMING = { zoom: 1.16, drop: 2.5 };

export interface RenderOptions {
  /** Which photo of the identity: pose, light, expression, clothes. Omitted: the canonical frontal photo. */
  nuisanceSeed?: number;
  /** One style or several of different kinds ("on-the-beach" + "wearing-sunglasses"). Omitted: a photo. */
  style?: StyleName | readonly StyleName[];
  /** Output width and height in pixels (default 64). */
  size?: number;
  /** The world (default WORLD_SEED). */
  worldSeed?: number;
}

/** One image to render: an identity and its options. */
export interface RenderRequest extends RenderOptions {
  id: number;
}

function stylesOf(options: RenderOptions): Style[] {
  const names = options.style === undefined ? [] : typeof options.style === "string" ? [options.style] : options.style;
  return resolveStyles(names);
}

/** The SVG document of one face (what renderFace rasterises), at `pixels` width and height. */
export function faceSvg(id: number, options: RenderOptions = {}, pixels = options.size ?? 64): string {
  const worldSeed = options.worldSeed ?? WORLD_SEED;
  return identitySvg(identityFromId(id, worldSeed), nuisanceFor(id, options.nuisanceSeed, worldSeed), stylesOf(options), pixels);
}

/**
 * The SVG of any identity vector (not only those of an id: tests vary one trait at a time) with a given
 * nuisance and styles.
 */
export function identitySvg(identity: Identity, nuisance: Nuisance, styles: readonly Style[], pixels: number): string {
  let look: Look = PHOTO_LOOK;
  let extras: Extras = NO_EXTRAS;
  let child = false;
  for (const style of styles) {
    if (style.identity) identity = style.identity(identity);
    if (style.nuisance) nuisance = style.nuisance(nuisance);
    if (style.look) look = style.look(look);
    if (style.extras) extras = { ...extras, ...style.extras };
    if (style.proportions?.child) child = true;
  }
  const defs = new Defs();
  const geometry = faceGeometry(identity, nuisance, { child });
  const ctx: DrawContext = { identity, nuisance, geometry, look, extras, defs };

  // A scene's background wins over a transformation's, which wins over a medium's paper.
  const scene = (styles.find((s) => s.kind === "scene") ?? styles.find((s) => s.background))?.background?.(ctx) ?? studioBackdrop(ctx);
  const hair = drawHair(ctx);
  const behind = styles.map((s) => s.behind?.(ctx) ?? "").join("");
  const front = styles.map((s) => s.front?.(ctx) ?? "").join("");
  const figure = behind + hair.back + drawBody(ctx) + drawEars(ctx) + drawSkin(ctx) + drawFacialHair(ctx) + drawEyes(ctx) +
    drawBrows(ctx) + drawNose(ctx) + drawMouth(ctx) + drawFaceDetails(ctx) + hair.front + front;
  const { cx, cy } = geometry;
  const pose = path`translate(${cx + nuisance.shiftX} ${cy + FRAMING.drop + nuisance.shiftY})rotate(${nuisance.rotation})scale(${FRAMING.zoom * nuisance.scale})translate(${-cx} ${-cy})`;
  let picture = scene + element("g", { transform: pose }, figure) + lighting(ctx);
  const filterStyle = styles.find((s) => s.filter);
  if (filterStyle?.filter) {
    const id = defs.raw("f", filterStyle.filter);
    picture = element("g", { filter: `url(#${id})` }, picture);
  }
  picture += styles.map((s) => s.overlay?.(ctx) ?? "").join("");
  const crisp = styles.some((s) => s.renderScale !== undefined) ? ' shape-rendering="crispEdges"' : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${pixels}" height="${pixels}" viewBox="0 0 100 100"${crisp}>${defs.toString()}${picture}</svg>`;
}

/** The plain studio backdrop: the nuisance's colour, lighter behind the head. */
function studioBackdrop(ctx: DrawContext): string {
  const colour = ctx.look.paint("accessory", ctx.nuisance.backdrop);
  const fill = ctx.look.shading === "photo" ? `url(#${ctx.defs.radial([[0, scale(colour, 1.08)], [1, scale(colour, 0.82)]], 0.5, 0.4, 0.75)})` : hex(colour);
  return element("rect", { width: 100, height: 100, fill });
}

/** Key-light direction, brightness and colour temperature as translucent layers over the picture. */
function lighting(ctx: DrawContext): string {
  const n = ctx.nuisance;
  if (ctx.look.shading !== "photo") return "";
  const a = (n.lightAngle * Math.PI) / 180;
  const s = n.lightStrength;
  const id = ctx.defs.add("l", (gid) => element("linearGradient", {
    id: gid, gradientUnits: "userSpaceOnUse", x1: 50 + 50 * Math.cos(a), y1: 50 + 50 * Math.sin(a), x2: 50 - 50 * Math.cos(a), y2: 50 - 50 * Math.sin(a),
  }, element("stop", { offset: 0, "stop-color": "#ffffff", "stop-opacity": 0.14 * s }) +
    element("stop", { offset: 0.5, "stop-color": "#808080", "stop-opacity": 0 }) +
    element("stop", { offset: 1, "stop-color": "#000000", "stop-opacity": 0.28 * s })));
  let out = element("rect", { width: 100, height: 100, fill: `url(#${id})` });
  if (n.brightness !== 1) {
    out += element("rect", { width: 100, height: 100, fill: n.brightness > 1 ? "#ffffff" : "#000000", opacity: Math.abs(n.brightness - 1) * 0.8 });
  }
  if (n.temperature !== 0) {
    const tint = n.temperature > 0 ? mix([255, 170, 80], [255, 140, 40], n.temperature) : [70, 130, 255] as const;
    out += element("rect", { width: 100, height: 100, fill: hex(tint), opacity: Math.abs(n.temperature) * 0.1 });
  }
  return out;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 8 || size > 2048) throw new Error(`size must be an integer in [8, 2048], got ${size}`);
}

/** One face as 8-bit RGB pixels (size × size). Deterministic: same inputs, same bytes. */
export async function renderFace(id: number, options: RenderOptions = {}): Promise<RgbImage> {
  const worldSeed = options.worldSeed ?? WORLD_SEED;
  return renderIdentity(identityFromId(id, worldSeed), nuisanceFor(id, options.nuisanceSeed, worldSeed), stylesOf(options), options.size ?? 64);
}

/** Any identity vector with a given nuisance and styles, as 8-bit RGB pixels (size × size). */
export async function renderIdentity(identity: Identity, nuisance: Nuisance, styles: readonly Style[], size = 64): Promise<RgbImage> {
  checkSize(size);
  const renderScale = styles.find((s) => s.renderScale !== undefined)?.renderScale ?? 1;
  const pixels = Math.max(8, Math.round(size * renderScale));
  let image = sharp(Buffer.from(identitySvg(identity, nuisance, styles, pixels)), { density: 72 });
  for (const style of styles) if (style.post) image = await style.post(image, size);
  const { data, info } = await image.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== size || info.height !== size) {
    throw new Error(`rendering identity ${identity.id} gave ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  }
  return { width: size, height: size, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * Many faces, `concurrency` at a time (sharp renders on libuv's thread pool, so a few in flight keep both
 * cores busy). Results are in request order.
 */
export async function renderFaces(requests: readonly RenderRequest[], concurrency = 8): Promise<RgbImage[]> {
  const results = new Array<RgbImage>(requests.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const i = next++;
      const { id, ...options } = requests[i]!;
      results[i] = await renderFace(id, options);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, requests.length)) }, worker));
  return results;
}
