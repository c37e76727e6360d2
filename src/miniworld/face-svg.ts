/**
 * The face itself as SVG: neck and shoulders, ears, skin with its marks, facial hair, eyes, brows, nose and
 * mouth (hair is in hair-svg.ts). Coordinates come from geometry.ts; colours pass through the style's Look.
 *
 * Photographic shading is soft radial/linear gradients lit from the nuisance's light direction; drawings get
 * flat fills and ink outlines. Detail lines (lids, nostrils, lip line) are always drawn, because at 64 × 64 they
 * carry much of what tells one face from another.
 */
import type { Geometry } from "./geometry.js";
import type { Identity } from "./identity.js";
import type { Defs, Extras, Look, PaintRole } from "./look.js";
import type { Nuisance } from "./nuisance.js";
import { Random } from "./random.js";
import { element, hex, mix, path, polygonPath, scale, smoothPath, type Point, type Rgb } from "./svg.js";

/** Everything a drawing function needs: who, how they are posed and lit, how it is painted. */
export interface DrawContext {
  identity: Identity;
  nuisance: Nuisance;
  geometry: Geometry;
  look: Look;
  extras: Extras;
  defs: Defs;
}

/** A colour after the style's recolouring, as "#rrggbb". */
export function paint(ctx: DrawContext, role: PaintRole, colour: Rgb): string {
  return hex(ctx.look.paint(role, colour));
}

/** A filled shape, with the style's ink outline when it has one. */
export function filled(ctx: DrawContext, d: string, role: PaintRole, colour: Rgb | string, extra: Record<string, string | number> = {}): string {
  const fill = typeof colour === "string" ? colour : paint(ctx, role, colour);
  const ink = ctx.look.ink;
  return element("path", {
    d, fill,
    stroke: ink ? hex(ink.colour) : undefined,
    "stroke-width": ink ? ink.width : undefined,
    "stroke-linejoin": ink ? "round" : undefined,
    ...extra,
  });
}

/** A stroked line (never filled). */
export function stroked(ctx: DrawContext, d: string, role: PaintRole, colour: Rgb, width: number, opacity?: number): string {
  return element("path", {
    d, fill: "none", stroke: paint(ctx, role, colour), "stroke-width": width, "stroke-linecap": "round", opacity,
  });
}

/** A fill lit from the key light: a radial gradient in photographs, the flat colour otherwise. */
export function lit(ctx: DrawContext, role: PaintRole, colour: Rgb, strength = 1): string {
  const base = ctx.look.paint(role, colour);
  if (ctx.look.shading !== "photo") return hex(base);
  const s = ctx.nuisance.lightStrength * strength;
  const angle = (ctx.nuisance.lightAngle * Math.PI) / 180;
  const fx = 0.5 + 0.22 * Math.cos(angle);
  const fy = 0.45 + 0.22 * Math.sin(angle);
  const id = ctx.defs.radial([[0, scale(base, 1 + 0.1 * s)], [0.55, base], [1, scale(base, 1 - 0.3 * s)]], fx, fy, 0.75, fx, fy);
  return `url(#${id})`;
}

function ellipse(cx: number, cy: number, rx: number, ry: number, attributes: Record<string, string | number | undefined>): string {
  return element("ellipse", { cx, cy, rx, ry, ...attributes });
}

/** Neck, the shadow under the chin, and shoulders in the nuisance's clothing. */
export function drawBody(ctx: DrawContext): string {
  const { cx, cy, height, width, chin } = ctx.geometry;
  const skin = ctx.identity.skin.rgb;
  const neck = width * 0.46;
  let out = filled(ctx, polygonPath([[cx - neck, cy + height * 0.4], [cx - neck * 1.08, 102], [cx + neck * 1.08, 102], [cx + neck, cy + height * 0.4]]),
    "skin", skin, { fill: lit(ctx, "skin", scale(skin, 0.86), 0.6) });
  const shadow = scale(ctx.look.paint("skin", skin), 0.55);
  const fade = ctx.look.shading === "photo" ? `url(#${ctx.defs.radial([[0, shadow, 0.75], [1, shadow, 0]], 0.5, 0.3, 0.6)})` : hex(shadow);
  out += ellipse(cx, chin + 0.5, width * 0.52, 3.5, { fill: fade, opacity: ctx.look.shading === "photo" ? 1 : 0.35 });
  const top = chin + 6;
  const d = path`M-2 102L-2 ${top + 10}C8 ${top + 3} ${cx - neck - 8} ${top + 1} ${cx - neck - 1} ${top}` +
    path`Q${cx} ${top + 9} ${cx + neck + 1} ${top}C${cx + neck + 8} ${top + 1} 92 ${top + 3} 102 ${top + 10}L102 102Z`;
  out += filled(ctx, d, "clothing", ctx.nuisance.clothing,
    { fill: lit(ctx, "clothing", ctx.nuisance.clothing, 0.8) });
  return out;
}

/** Both ears (drawn before the face, which covers their inner half). */
export function drawEars(ctx: DrawContext): string {
  const { ears } = ctx.geometry;
  const skin = ctx.identity.skin.rgb;
  let out = "";
  for (const [x, side] of [[ears.left, -1], [ears.right, 1]] as const) {
    const rx = ears.height * 0.4;
    const ry = ears.height * 0.5;
    const rotate = path`rotate(${side * 8} ${x} ${ears.y})`;
    out += element("g", { transform: rotate },
      filled(ctx, smoothPath([[x, ears.y - ry], [x + side * rx, ears.y - ry * 0.2], [x + side * rx * 0.4, ears.y + ry], [x - side * rx * 0.6, ears.y]], true),
        "skin", skin, { fill: lit(ctx, "skin", scale(skin, 0.94), 0.7) }) +
      ellipse(x + side * rx * 0.2, ears.y - ry * 0.05, rx * 0.45, ry * 0.55, { fill: paint(ctx, "skin", scale(skin, 0.72)) }));
    if (ctx.extras.robot) out += element("circle", { cx: x + side * rx * 0.2, cy: ears.y, r: rx * 0.35, fill: paint(ctx, "line", [90, 96, 110]) });
  }
  return out;
}

/** The face shape with its shading, blush, freckles, moles and age lines. */
export function drawSkin(ctx: DrawContext): string {
  const { identity, geometry: g } = ctx;
  const skin = identity.skin.rgb;
  let out = filled(ctx, smoothPath(g.outline, true), "skin", skin, { fill: lit(ctx, "skin", skin) });
  const marks = identity.marks;
  if (marks.blush > 0) {
    const fade = ctx.defs.radial([[0, [226, 104, 104], 0.45 * marks.blush], [1, [226, 104, 104], 0]]);
    for (const x of [g.eyes.left, g.eyes.right]) {
      out += ellipse(x, g.eyes.y + g.height * 0.27, 4.5, 3, { fill: ctx.look.shading === "photo" ? `url(#${fade})` : paint(ctx, "skin", mix(skin, [226, 104, 104], 0.3 * marks.blush)) });
    }
  }
  if (marks.freckles > 0) {
    const r = new Random(marks.freckleSeed);
    const count = Math.round(10 + 26 * marks.freckles);
    const colour = paint(ctx, "mark", mix(scale(skin, 0.6), [120, 60, 30], 0.3));
    for (let i = 0; i < count; i++) {
      const u = r.uniform(-0.78, 0.78);
      const v = r.uniform(0, 0.32) - Math.abs(u) * 0.08;
      out += element("circle", { cx: g.cx + g.turn + u * g.width * 0.8, cy: g.eyes.y + 2.4 + v * g.height, r: r.uniform(0.3, 0.5), fill: colour, opacity: 0.7 });
    }
  }
  for (const mole of marks.moles) {
    let x = g.cx + g.turn * 0.8 + mole.u * g.width * 0.72;
    let y = g.cy + mole.v * g.height * 0.82;
    if (Math.abs(y - g.eyes.y) < g.eyes.halfHeight + 2.5) y += 4.5;
    if (Math.abs(x - g.nose.x) < 2 && y > g.nose.top && y < g.mouth.y + 3) x += 3;
    out += element("circle", { cx: x, cy: y, r: 0.55 + 0.45 * mole.size, fill: paint(ctx, "mark", [58, 36, 28]) });
  }
  const lines = Math.max(ctx.extras.wrinkles, identity.age * 0.35);
  if (lines > 0.05) out += drawAgeLines(ctx, lines);
  return out;
}

function drawAgeLines(ctx: DrawContext, amount: number): string {
  const g = ctx.geometry;
  const colour = scale(ctx.identity.skin.rgb, 0.66);
  const width = 0.35 + 0.2 * amount;
  const opacity = 0.25 + 0.55 * amount;
  const paths: string[] = [];
  // Nasolabial folds: from the nose wings to past the mouth corners.
  for (const side of [-1, 1]) {
    const x0 = g.nose.x + side * (g.nose.halfWidth + 0.8);
    const x1 = g.mouth.x + side * (g.mouth.halfWidth + 1.2);
    paths.push(path`M${x0} ${g.nose.tip - 1}Q${x1 + side * 0.8} ${g.mouth.y - 2} ${x1} ${g.mouth.y + 2}`);
  }
  if (ctx.extras.wrinkles > 0.3) {
    const top = g.brows.y - 3;
    for (let i = 0; i < 3; i++) {
      const y = top - i * 2;
      paths.push(path`M${g.cx - g.width * 0.45} ${y + 0.6}Q${g.cx} ${y - 0.8} ${g.cx + g.width * 0.45} ${y + 0.6}`);
    }
    for (const [x, side] of [[g.eyes.left, -1], [g.eyes.right, 1]] as const) {
      const ox = x + side * (g.eyes.halfWidth + 0.8);
      paths.push(path`M${ox} ${g.eyes.y - 0.6}L${ox + side * 1.8} ${g.eyes.y - 1.4}M${ox} ${g.eyes.y + 0.6}L${ox + side * 1.8} ${g.eyes.y + 1.4}`);
      paths.push(path`M${x - g.eyes.halfWidth * 0.8} ${g.eyes.y + g.eyes.halfHeight + 1}Q${x} ${g.eyes.y + g.eyes.halfHeight + 2.6} ${x + g.eyes.halfWidth * 0.8} ${g.eyes.y + g.eyes.halfHeight + 1}`);
    }
  }
  return paths.map((d) => stroked(ctx, d, "skin", colour, width, opacity)).join("");
}

/** Stubble, moustache, goatee or beard, in the identity's facial-hair colour. */
export function drawFacialHair(ctx: DrawContext): string {
  const { kind, rgb: colour, density } = ctx.identity.facialHair;
  if (kind === "none") return "";
  const g = ctx.geometry;
  const m = g.mouth;
  const moustache: Point[] = [
    [m.x - m.halfWidth - 0.9, m.y + 0.8], [m.x - m.halfWidth * 0.5, g.nose.tip + 1.4], [m.x, g.nose.tip + 1.1],
    [m.x + m.halfWidth * 0.5, g.nose.tip + 1.4], [m.x + m.halfWidth + 0.9, m.y + 0.8], [m.x, m.y - m.upperLip * 0.5],
  ];
  if (kind === "moustache") return filled(ctx, smoothPath(moustache, true), "hair", colour, { opacity: density });
  if (kind === "goatee") {
    const chin: Point[] = [
      [m.x - m.halfWidth * 0.6, m.y + m.lowerLip + 0.6], [m.x - m.halfWidth * 0.5, g.chin - 1.2], [m.x, g.chin + 0.6],
      [m.x + m.halfWidth * 0.5, g.chin - 1.2], [m.x + m.halfWidth * 0.6, m.y + m.lowerLip + 0.6], [m.x, m.y + m.lowerLip * 1.6 + 0.6],
    ];
    return filled(ctx, smoothPath(moustache, true), "hair", colour, { opacity: density }) +
      filled(ctx, smoothPath(chin, true), "hair", colour, { opacity: density });
  }
  // Stubble and beards cover the lower face: from the sideburns down the jaw round the chin (outline points
  // 4–10) and back up the other side, then across above the mouth.
  const sideburn = g.ears.y - g.ears.height * 0.3;
  const jaw = g.outline.slice(4, 11).map(([x, y]): Point => [x + (x - g.cx) * 0.03, y + 0.3]);
  if (kind === "full beard") jaw.splice(2, 3, [g.cx + g.width * 0.32, g.chin + 3.5], [g.cx, g.chin + 6.5], [g.cx - g.width * 0.32, g.chin + 3.5]);
  const lower: Point[] = [[g.cx + g.width * 0.99, sideburn], ...jaw, [g.cx - g.width * 0.99, sideburn]];
  const inner: Point[] = [
    [g.cx - g.width * 0.88, sideburn + 0.5], [g.cx - g.width * 0.78, m.y - 1.5], [m.x - m.halfWidth - 1.6, m.y - 1.2],
    [m.x - m.halfWidth * 0.6, g.nose.tip + 1.4], [m.x, g.nose.tip + 1], [m.x + m.halfWidth * 0.6, g.nose.tip + 1.4],
    [m.x + m.halfWidth + 1.6, m.y - 1.2], [g.cx + g.width * 0.78, m.y - 1.5], [g.cx + g.width * 0.88, sideburn + 0.5],
  ];
  const d = smoothPath([...lower, ...inner], true, 0.6);
  if (kind === "stubble") return filled(ctx, d, "hair", mix(colour, ctx.identity.skin.rgb, 0.35), { opacity: 0.45 * density, stroke: "none" });
  return filled(ctx, d, "hair", mix(colour, ctx.identity.skin.rgb, kind === "beard" ? 0.15 : 0), { opacity: 0.7 + 0.3 * density }) +
    filled(ctx, smoothPath(moustache, true), "hair", scale(colour, 0.92));
}
