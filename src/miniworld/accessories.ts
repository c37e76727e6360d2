/**
 * Things a person can wear ("wearing a red hat", "wearing sunglasses", ...), placed from the face geometry so
 * they fit every head, and the costume pieces of some transformations (robot antenna, vampire collar).
 */
import type { DrawContext } from "./face-svg.js";
import { element, hex, path, scale, type Rgb } from "./svg.js";

function fill(ctx: DrawContext, colour: Rgb): string {
  return hex(ctx.look.paint("accessory", colour));
}

function ink(ctx: DrawContext): Record<string, string | number> {
  return ctx.look.ink ? { stroke: hex(ctx.look.ink.colour), "stroke-width": ctx.look.ink.width } : {};
}

/** Top of the hair (roughly): hats and crowns sit on it. */
function hairTop(ctx: DrawContext): number {
  const style = ctx.identity.hair.style;
  const flat = style === "bald" || style === "buzz cut" || style === "mohawk";
  return ctx.geometry.skullTop - (flat ? 0.5 : 1.4 + 4 * ctx.identity.hair.volume);
}

export function redHat(ctx: DrawContext): string {
  const g = ctx.geometry;
  const brimY = g.hairline + 1.5;
  const top = Math.min(hairTop(ctx) - 2, brimY - 15);
  const red: Rgb = [196, 30, 40];
  const body = ctx.look.shading === "photo" ? `url(#${ctx.defs.linear([[0, ctx.look.paint("accessory", red)], [1, ctx.look.paint("accessory", scale(red, 0.7))]], 0, 0, 1, 0)})` : fill(ctx, red);
  let out = element("path", {
    d: path`M${g.cx - g.width * 0.92} ${brimY}L${g.cx - g.width * 0.8} ${top + 3}Q${g.cx} ${top - 3} ${g.cx + g.width * 0.8} ${top + 3}L${g.cx + g.width * 0.92} ${brimY}Z`,
    fill: body, ...ink(ctx),
  });
  out += element("rect", { x: g.cx - g.width * 0.9, y: brimY - 4, width: g.width * 1.8, height: 2.6, fill: fill(ctx, [60, 16, 20]) });
  out += element("ellipse", { cx: g.cx, cy: brimY, rx: g.width * 1.6, ry: 3.2, fill: fill(ctx, scale(red, 0.85)), ...ink(ctx) });
  return out;
}

function lensFrames(ctx: DrawContext, lensFill: string, frame: Rgb, frameWidth: number): string {
  const g = ctx.geometry;
  const e = g.eyes;
  const halfW = e.halfWidth * 1.4 + 1;
  const halfH = Math.max(e.halfHeight * 1.9, 3.3) + 0.9;
  const y = e.y + 0.4;
  let out = "";
  for (const x of [e.left, e.right]) {
    out += element("rect", { x: x - halfW, y: y - halfH, width: 2 * halfW, height: 2 * halfH, rx: halfH * 0.8, fill: lensFill, stroke: fill(ctx, frame), "stroke-width": frameWidth });
  }
  const inner = [e.left + halfW, e.right - halfW];
  let d = path`M${inner[0]!} ${y - halfH * 0.4}Q${g.nose.x} ${y - halfH * 0.9} ${inner[1]!} ${y - halfH * 0.4}`;
  d += path`M${e.left - halfW} ${y - halfH * 0.3}L${g.ears.left + 1} ${g.ears.y - 2}M${e.right + halfW} ${y - halfH * 0.3}L${g.ears.right - 1} ${g.ears.y - 2}`;
  out += element("path", { d, fill: "none", stroke: fill(ctx, frame), "stroke-width": frameWidth });
  return out;
}

export function sunglasses(ctx: DrawContext): string {
  const lens = ctx.look.shading === "photo"
    ? `url(#${ctx.defs.linear([[0, ctx.look.paint("accessory", [70, 76, 96])], [0.5, ctx.look.paint("accessory", [18, 18, 26])], [1, ctx.look.paint("accessory", [40, 40, 52])]], 0, 0, 1, 1)})`
    : fill(ctx, [20, 20, 28]);
  return lensFrames(ctx, lens, [10, 10, 12], 0.9);
}

export function glasses(ctx: DrawContext): string {
  return lensFrames(ctx, "none", [48, 34, 30], 0.75);
}

export function crown(ctx: DrawContext): string {
  const g = ctx.geometry;
  const base = Math.min(hairTop(ctx) + 5, g.hairline - 1);
  const half = g.width * 0.8;
  const gold: Rgb = [236, 186, 50];
  let d = path`M${g.cx - half} ${base}`;
  for (let i = 0; i <= 4; i++) {
    const x = g.cx - half + (2 * half * i) / 4;
    const peak = base - 11 - (i === 2 ? 3 : 0);
    d += path`L${x} ${peak}`;
    if (i < 4) d += path`L${x + half / 4} ${base - 5}`;
  }
  d += path`L${g.cx + half} ${base}Z`;
  const body = ctx.look.shading === "photo" ? `url(#${ctx.defs.linear([[0, ctx.look.paint("accessory", [255, 226, 120])], [1, ctx.look.paint("accessory", [190, 130, 30])]])})` : fill(ctx, gold);
  let out = element("path", { d, fill: body, ...ink(ctx) });
  out += element("rect", { x: g.cx - half, y: base - 3, width: 2 * half, height: 3, fill: fill(ctx, scale(gold, 0.85)) });
  for (const [dx, c] of [[-0.5, [200, 20, 40]], [0, [30, 80, 200]], [0.5, [20, 150, 70]]] as const) {
    out += element("circle", { cx: g.cx + dx * half, cy: base - 1.5, r: 1.1, fill: fill(ctx, c) });
  }
  return out;
}

export function scarf(ctx: DrawContext): string {
  const g = ctx.geometry;
  const y = g.chin - 1;
  const red: Rgb = [180, 36, 48];
  const wrap = path`M${g.cx - g.width * 0.8} ${y}Q${g.cx} ${y + 5} ${g.cx + g.width * 0.8} ${y}L${g.cx + g.width * 0.95} ${y + 8}Q${g.cx} ${y + 14} ${g.cx - g.width * 0.95} ${y + 8}Z`;
  const tail = path`M${g.cx + g.width * 0.2} ${y + 7}L${g.cx + g.width * 0.55} ${y + 6}L${g.cx + g.width * 0.62} 104L${g.cx + g.width * 0.24} 104Z`;
  let out = element("path", { d: tail, fill: fill(ctx, scale(red, 0.85)), ...ink(ctx) });
  out += element("path", { d: wrap, fill: fill(ctx, red), ...ink(ctx) });
  let stripes = "";
  for (const t of [0.3, 0.55]) stripes += path`M${g.cx - g.width * 0.85} ${y + 7 * t + 1}Q${g.cx} ${y + 7 * t + 5.5} ${g.cx + g.width * 0.85} ${y + 7 * t + 1}`;
  out += element("path", { d: stripes, fill: "none", stroke: fill(ctx, [240, 226, 200]), "stroke-width": 0.9 });
  return out;
}

export function headphones(ctx: DrawContext): string {
  const g = ctx.geometry;
  const top = hairTop(ctx) - 1.5;
  const band = path`M${g.ears.left - 1} ${g.ears.y - 3}C${g.ears.left - 3} ${top - 4} ${g.ears.right + 3} ${top - 4} ${g.ears.right + 1} ${g.ears.y - 3}`;
  let out = element("path", { d: band, fill: "none", stroke: fill(ctx, [36, 36, 44]), "stroke-width": 2.4 });
  for (const [x, side] of [[g.ears.left, -1], [g.ears.right, 1]] as const) {
    out += element("rect", { x: x - 3.2 + side * 0.8, y: g.ears.y - 5.5, width: 6.4, height: 11, rx: 2.6, fill: fill(ctx, [44, 44, 54]), ...ink(ctx) });
    out += element("rect", { x: x - 1.6 + side * 1.6, y: g.ears.y - 3.5, width: 3.2, height: 7, rx: 1.4, fill: fill(ctx, [220, 60, 60]) });
  }
  return out;
}

export function antenna(ctx: DrawContext): string {
  const g = ctx.geometry;
  const top = hairTop(ctx);
  return element("path", { d: path`M${g.cx} ${top + 1}L${g.cx} ${top - 9}`, stroke: fill(ctx, [150, 156, 170]), "stroke-width": 1.1 }) +
    element("circle", { cx: g.cx, cy: top - 10, r: 2, fill: "#ff3a3a" });
}

/** A high black collar lined with red, and two small fangs. */
export function vampireCostume(ctx: DrawContext): string {
  const g = ctx.geometry;
  const y = g.chin - 2;
  let out = element("path", {
    d: path`M${g.cx - g.width * 1.5} 104L${g.cx - g.width * 1.35} ${y - 8}L${g.cx - g.width * 0.45} ${y + 6}L${g.cx} ${y + 10}L${g.cx + g.width * 0.45} ${y + 6}L${g.cx + g.width * 1.35} ${y - 8}L${g.cx + g.width * 1.5} 104Z`,
    fill: fill(ctx, [150, 16, 28]), ...ink(ctx),
  });
  out += element("path", {
    d: path`M${g.cx - g.width * 1.6} 104L${g.cx - g.width * 0.5} ${y + 8}L${g.cx} ${y + 12}L${g.cx + g.width * 0.5} ${y + 8}L${g.cx + g.width * 1.6} 104Z`,
    fill: fill(ctx, [16, 14, 20]), ...ink(ctx),
  });
  const m = g.mouth;
  for (const side of [-1, 1]) {
    const x = m.x + side * m.halfWidth * 0.45;
    out += element("path", { d: path`M${x - 0.7} ${m.y}L${x} ${m.y + 2.2}L${x + 0.7} ${m.y}Z`, fill: "#f6f4ee" });
  }
  return out;
}
