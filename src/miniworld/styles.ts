/**
 * The style catalogue: every context, medium, accessory, expression, age change and transformation that a
 * prompt can ask for, each with its canonical prompt phrase. Each keeps the identity visible: drawings keep the
 * shapes (and usually the colours), transformations recolour skin or material but keep hair, eyes and the
 * geometry of the face.
 */
import sharp from "sharp";
import { antenna, crown, glasses, headphones, redHat, scarf, sunglasses, vampireCostume } from "./accessories.js";
import type { Identity } from "./identity.js";
import type { Look, PaintRole } from "./look.js";
import { beach, bubbles, cityAtNight, forest, graveyard, lab, museum, snow, snowflakes, space, sunset, underwater } from "./scenes.js";
import { element, hex, luma, mix, saturate, scale, type Rgb } from "./svg.js";
import type { HiddenAttribute, Style, StyleKind } from "./style.js";

const NO_COLOUR: readonly HiddenAttribute[] = ["hair colour", "eye colour", "skin"];
const DARK_ROLES: ReadonlySet<PaintRole> = new Set(["hair", "brow", "pupil", "line", "mark", "mouth"]);

function posterise(colour: Rgb, levels: number): Rgb {
  const step = 255 / (levels - 1);
  const level = (c: number): number => Math.round(Math.max(0, Math.min(255, c)) / step) * step;
  return [level(colour[0]), level(colour[1]), level(colour[2])];
}

const POP_COLOURS: readonly Rgb[] = [[255, 214, 0], [0, 200, 230], [255, 80, 170]];

/** Greyscale that stays 3-channel sRGB (sharp's greyscale() would make the output single-channel). */
const GREY: sharp.Matrix3x3 = [[0.299, 0.587, 0.114], [0.299, 0.587, 0.114], [0.299, 0.587, 0.114]];

function plainBackdrop(colour: Rgb): (ctx: { look: Look }) => string {
  return (ctx) => element("rect", { width: 100, height: 100, fill: hex(ctx.look.paint("accessory", colour)) });
}

/** Paper grain: fractal noise, greyed, laid over the picture faintly. */
function grain(id: string, opacity: number): string {
  return `<filter id="${id}" x="0" y="0" width="1" height="1"><feTurbulence type="fractalNoise" baseFrequency="0.9" numOctaves="1" seed="3"/>` +
    `<feColorMatrix type="matrix" values="0 0 0 0 0.5  0 0 0 0 0.5  0 0 0 0 0.5  0 0 0 ${opacity} 0"/><feBlend in2="SourceGraphic" mode="multiply"/></filter>`;
}

/** Edges that wobble like wet paint or brush strokes. */
function wobble(id: string, scaleUnits: number, frequency: number, blur: number): string {
  return `<filter id="${id}" x="-0.05" y="-0.05" width="1.1" height="1.1"><feTurbulence type="fractalNoise" baseFrequency="${frequency}" numOctaves="2" seed="7" result="n"/>` +
    `<feDisplacementMap in="SourceGraphic" in2="n" scale="${scaleUnits}" xChannelSelector="R" yChannelSelector="G"/>` +
    (blur > 0 ? `<feGaussianBlur stdDeviation="${blur}"/>` : "") + `</filter>`;
}

/** Wet edges (displaced, softened) on textured paper (warm noise multiplied in). */
function watercolourFilter(id: string): string {
  return `<filter id="${id}" x="0" y="0" width="1" height="1">` +
    `<feTurbulence type="fractalNoise" baseFrequency="0.1" numOctaves="2" seed="7" result="n"/>` +
    `<feDisplacementMap in="SourceGraphic" in2="n" scale="4" xChannelSelector="R" yChannelSelector="G" result="d"/>` +
    `<feGaussianBlur in="d" stdDeviation="0.6" result="b"/>` +
    `<feTurbulence type="fractalNoise" baseFrequency="0.35" numOctaves="2" seed="11" result="g"/>` +
    `<feColorMatrix in="g" type="matrix" values="0 0 0 0 0.62  0 0 0 0 0.56  0 0 0 0 0.5  0 0 0 0.55 0" result="paper"/>` +
    `<feBlend in="b" in2="paper" mode="multiply"/></filter>`;
}

function older(identity: Identity): Identity {
  const grey: Rgb = [214, 212, 208];
  return {
    ...identity,
    age: 1,
    hair: { ...identity.hair, rgb: mix(identity.hair.rgb, grey, 0.72), hairline: Math.min(1, identity.hair.hairline + 0.45), volume: identity.hair.volume * 0.7 },
    brows: { ...identity.brows, rgb: mix(identity.brows.rgb, grey, 0.6) },
    facialHair: { ...identity.facialHair, rgb: mix(identity.facialHair.rgb, grey, 0.7) },
    mouth: { ...identity.mouth, upperLip: identity.mouth.upperLip * 0.5, lowerLip: identity.mouth.lowerLip * 0.6 },
    ears: { ...identity.ears, size: Math.min(1, identity.ears.size + 0.25) },
    nose: { ...identity.nose, length: Math.min(1, identity.nose.length + 0.15) },
  };
}

function younger(identity: Identity): Identity {
  return {
    ...identity,
    age: 0,
    hair: { ...identity.hair, style: identity.hair.style === "bald" ? "short" : identity.hair.style, hairline: 0 },
    facialHair: { ...identity.facialHair, kind: "none" },
    marks: { ...identity.marks, blush: Math.max(identity.marks.blush, 0.45) },
  };
}

const CATALOGUE = [
  // Scenes
  { name: "on-the-beach", prompt: "on the beach", kind: "scene", background: beach, nuisance: (n) => ({ ...n, temperature: 0.5, brightness: 1.05 }) },
  { name: "in-a-forest", prompt: "in a forest", kind: "scene", background: forest },
  { name: "in-a-city-at-night", prompt: "in a city at night", kind: "scene", background: cityAtNight, nuisance: (n) => ({ ...n, brightness: 0.78, temperature: -0.7, lightStrength: 0.9 }) },
  { name: "in-the-snow", prompt: "in the snow", kind: "scene", background: snow, overlay: snowflakes, nuisance: (n) => ({ ...n, temperature: -0.5 }) },
  { name: "in-space", prompt: "in space", kind: "scene", background: space, nuisance: (n) => ({ ...n, brightness: 0.9, lightStrength: 1 }) },
  { name: "underwater", prompt: "underwater", kind: "scene", background: underwater, overlay: bubbles },
  { name: "at-sunset", prompt: "at sunset", kind: "scene", background: sunset, nuisance: (n) => ({ ...n, temperature: 1, lightAngle: 200, lightStrength: 0.9 }) },
  // Media
  {
    name: "pencil-sketch", prompt: "as a pencil sketch", kind: "medium", hides: NO_COLOUR,
    look: (look) => ({
      paint: (role, c) => {
        const v = 255 - (255 - luma(look.paint(role, c))) * (DARK_ROLES.has(role) ? 0.7 : 0.28);
        return [v, v, v];
      },
      ink: { colour: [64, 64, 68], width: 0.55 },
      shading: "flat",
    }),
    background: plainBackdrop([244, 242, 236]),
    filter: (id) => grain(id, 0.35),
    post: (image) => image.recomb(GREY),
  },
  {
    name: "pop-art", prompt: "as a pop art print", kind: "medium", hides: ["skin"],
    look: (look) => ({ paint: (role, c) => posterise(saturate(look.paint(role, c), 1.6), 5), ink: { colour: [0, 0, 0], width: 1.1 }, shading: "flat" }),
    background: (ctx) => {
      const base = POP_COLOURS[ctx.nuisance.detailSeed % POP_COLOURS.length]!;
      const dots = ctx.defs.raw("p", (id) => `<pattern id="${id}" width="3.2" height="3.2" patternUnits="userSpaceOnUse"><circle cx="1.6" cy="1.6" r="0.9" fill="${hex(scale(base, 0.75))}"/></pattern>`);
      return element("rect", { width: 100, height: 100, fill: hex(base) }) + element("rect", { width: 100, height: 100, fill: `url(#${dots})` });
    },
  },
  {
    name: "watercolour", prompt: "as a watercolour painting", kind: "medium",
    look: (look) => ({ ...look, paint: (role, c) => mix(saturate(look.paint(role, c), 1.1), [255, 255, 255], 0.22) }),
    background: (ctx) => {
      const wash = ctx.defs.radial([[0, [170, 200, 230]], [0.7, [226, 232, 236]], [1, [248, 244, 236]]], 0.5, 0.45, 0.65);
      return element("rect", { width: 100, height: 100, fill: `url(#${wash})` });
    },
    filter: (id) => watercolourFilter(id),
    post: (image) => image.modulate({ saturation: 0.95, brightness: 1.04 }),
  },
  {
    name: "pixel-art", prompt: "as pixel art", kind: "medium", renderScale: 0.375, hides: ["eye colour"],
    look: (look) => ({ paint: (role, c) => posterise(look.paint(role, c), 12), ink: null, shading: "flat" }),
    background: plainBackdrop([112, 160, 220]),
    // Rasterise the small picture first: resizing the SVG itself would make sharp render it at the big size.
    post: async (image, size) => {
      const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
      return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).resize(size, size, { kernel: "nearest" });
    },
  },
  {
    name: "oil-painting", prompt: "as an oil painting", kind: "medium",
    look: (look) => ({ ...look, paint: (role, c) => { const p = saturate(look.paint(role, c), 1.25); return [p[0] * 1.04, p[1], p[2] * 0.9]; } }),
    background: (ctx) => {
      const glow = ctx.defs.radial([[0, [110, 82, 48]], [1, [34, 24, 16]]], 0.5, 0.4, 0.7);
      return element("rect", { width: 100, height: 100, fill: `url(#${glow})` });
    },
    filter: (id) => wobble(id, 2, 0.2, 0),
    post: (image, size) => image.median(Math.max(3, Math.round(size / 40) | 1)),
  },
  {
    name: "comic", prompt: "as a comic book drawing", kind: "medium",
    look: (look) => ({ paint: (role, c) => mix(saturate(look.paint(role, c), 1.35), [255, 255, 255], 0.05), ink: { colour: [10, 10, 10], width: 0.8 }, shading: "flat" }),
    background: (ctx) => {
      let rays = "";
      for (let i = 0; i < 16; i += 2) {
        const a0 = (i * Math.PI) / 8;
        const a1 = ((i + 1) * Math.PI) / 8;
        rays += `M50 45L${Math.round(50 + 90 * Math.cos(a0))} ${Math.round(45 + 90 * Math.sin(a0))}L${Math.round(50 + 90 * Math.cos(a1))} ${Math.round(45 + 90 * Math.sin(a1))}Z`;
      }
      return element("rect", { width: 100, height: 100, fill: hex(ctx.look.paint("accessory", [150, 210, 250])) }) +
        element("path", { d: rays, fill: hex(ctx.look.paint("accessory", [200, 232, 255])) });
    },
    overlay: () => element("rect", { x: 1.5, y: 1.5, width: 97, height: 97, fill: "none", stroke: "#000000", "stroke-width": 3 }),
  },
  {
    name: "black-and-white-photo", prompt: "as a black and white photo", kind: "medium", hides: NO_COLOUR,
    post: (image) => image.recomb(GREY).linear(1.15, -14),
  },
  {
    name: "sepia-photo", prompt: "as an old sepia photo", kind: "medium", hides: NO_COLOUR,
    overlay: (ctx) => element("rect", { width: 100, height: 100, fill: `url(#${ctx.defs.radial([[0.55, [60, 40, 20], 0], [1, [60, 40, 20], 0.55]], 0.5, 0.5, 0.75)})` }),
    post: (image) => image.tint({ r: 150, g: 110, b: 70 }),
  },
  // Accessories
  { name: "wearing-a-red-hat", prompt: "wearing a red hat", kind: "accessory", front: redHat },
  { name: "wearing-sunglasses", prompt: "wearing sunglasses", kind: "accessory", front: sunglasses, hides: ["eye colour"] },
  { name: "wearing-glasses", prompt: "wearing glasses", kind: "accessory", front: glasses },
  { name: "wearing-a-crown", prompt: "wearing a crown", kind: "accessory", front: crown },
  { name: "wearing-a-scarf", prompt: "wearing a scarf", kind: "accessory", front: scarf },
  { name: "wearing-headphones", prompt: "wearing headphones", kind: "accessory", front: headphones },
  // Expressions
  { name: "smiling", prompt: "smiling", kind: "expression", nuisance: (n) => ({ ...n, expression: "smile" }) },
  { name: "surprised", prompt: "looking surprised", kind: "expression", nuisance: (n) => ({ ...n, expression: "surprised" }) },
  { name: "angry", prompt: "looking angry", kind: "expression", nuisance: (n) => ({ ...n, expression: "angry" }) },
  // Age
  { name: "as-a-child", prompt: "as a child", kind: "age", identity: younger, proportions: { child: true }, hides: ["facial hair"] },
  { name: "as-an-old-person", prompt: "as an old person", kind: "age", identity: older, extras: { wrinkles: 1 }, hides: ["hair colour"] },
  // Transformations far from a photograph
  {
    name: "as-a-statue", prompt: "as a marble statue", kind: "transformation", hides: NO_COLOUR,
    look: (look) => ({ ...look, paint: (role, c) => { const v = 138 + 0.44 * luma(look.paint(role, c)); return [v, v * 0.985, v * 0.95]; } }),
    extras: { statue: true }, background: museum,
    nuisance: (n) => ({ ...n, lightStrength: 1, temperature: 0 }),
  },
  {
    name: "as-a-zombie", prompt: "as a zombie", kind: "transformation", hides: ["skin", "eye colour"],
    look: (look) => ({
      ...look,
      paint: (role, c) => {
        const p = look.paint(role, c);
        if (role === "skin") return scale(mix(saturate(p, 0.4), [118, 150, 96], 0.5), 0.92);
        if (role === "hair" || role === "brow") return scale(saturate(p, 0.5), 0.85);
        if (role === "clothing") return scale(saturate(p, 0.4), 0.55);
        return p;
      },
    }),
    extras: { zombie: true }, background: graveyard,
    nuisance: (n) => ({ ...n, temperature: -0.4, lightStrength: 0.9, brightness: 0.9 }),
  },
  {
    name: "as-a-robot", prompt: "as a robot", kind: "transformation", hides: ["skin"],
    look: (look) => ({
      ...look,
      paint: (role, c) => {
        const p = look.paint(role, c);
        if (role === "skin") { const m = 70 + 0.62 * luma(p); return [m * 0.92, m * 0.97, m * 1.08]; }
        if (role === "hair" || role === "brow") return mix(p, [176, 182, 196], 0.3);
        if (role === "lip") return [92, 98, 114];
        if (role === "clothing") return [64, 72, 88];
        return p;
      },
    }),
    extras: { robot: true }, background: lab, front: antenna,
  },
  {
    name: "as-a-vampire", prompt: "as a vampire", kind: "transformation", hides: ["skin"],
    look: (look) => ({
      ...look,
      paint: (role, c) => {
        const p = look.paint(role, c);
        if (role === "skin") return mix(p, [232, 228, 238], 0.5);
        if (role === "lip") return [120, 10, 24];
        return p;
      },
    }),
    background: (ctx) => cityAtNight(ctx), front: vampireCostume,
    nuisance: (n) => ({ ...n, brightness: 0.85, temperature: -0.6 }),
  },
] as const satisfies readonly Style[];

/** Every style, in catalogue order. */
export const STYLES: readonly Style[] = CATALOGUE;
export type StyleName = (typeof CATALOGUE)[number]["name"];
export const STYLE_NAMES: readonly StyleName[] = CATALOGUE.map((s) => s.name);

/** A style by name (an error naming the known styles otherwise). */
export function styleByName(name: string): Style {
  const style = STYLES.find((s) => s.name === name);
  if (!style) throw new Error(`unknown style '${name}'; known styles: ${STYLE_NAMES.join(", ")}`);
  return style;
}

/** The order in which combined styles apply: a medium last, so it paints whatever the others made. */
const APPLY_ORDER: readonly StyleKind[] = ["age", "expression", "transformation", "accessory", "scene", "medium"];

/** Styles by name, checked to combine (at most one of each kind), in the order they apply. */
export function resolveStyles(names: readonly string[]): Style[] {
  const styles = names.map(styleByName);
  const seen = new Map<string, string>();
  for (const style of styles) {
    const other = seen.get(style.kind);
    if (other !== undefined) throw new Error(`styles '${other}' and '${style.name}' are both of kind '${style.kind}': pick one`);
    seen.set(style.kind, style.name);
  }
  return styles.sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind));
}
