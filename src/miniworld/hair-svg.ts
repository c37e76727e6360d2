/**
 * Hair as SVG, in two layers: what hangs behind the head (long hair, afros, buns, ponytails) and what lies in
 * front of it (the cap over the skull with its hairline, fringes, side strands over the ears).
 *
 * Every style is built from a few pieces: a cap (outer outline over the skull + a hairline across the
 * forehead), side panels, a back shape, and bumps (curls) along an outline. Volume, length, parting and the
 * hairline height are the identity's continuous hair traits, so two people with "long brown hair" still differ.
 */
import { filled, stroked, type DrawContext } from "./face-svg.js";
import type { HairStyle } from "./identity.js";
import { Random } from "./random.js";
import { element, hex, mix, path, scale, smoothPath, type Point, type Rgb } from "./svg.js";

interface HairShape {
  back: string;
  front: string;
}

/** The hair fill: a light-to-dark vertical gradient in photographs, flat otherwise. */
function hairFill(ctx: DrawContext, colour: Rgb, depth = 1): string {
  const base = ctx.look.paint("hair", scale(colour, depth));
  if (ctx.look.shading !== "photo") return hex(base);
  const id = ctx.defs.linear([[0, mix(scale(base, 1.25), [255, 255, 255], 0.06)], [0.55, base], [1, scale(base, 0.72)]]);
  return `url(#${id})`;
}

/** Circles along a closed or open outline: curls. */
function bumps(outline: readonly Point[], radius: number, fill: string, jitter: Random): string {
  let out = "";
  for (let i = 0; i < outline.length; i++) {
    const [x, y] = outline[i]!;
    out += element("circle", { cx: x, cy: y, r: radius * jitter.uniform(0.8, 1.15), fill });
  }
  return out;
}

/** Points every `step` along a polyline. */
function resample(points: readonly Point[], step: number): Point[] {
  const out: Point[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const [x0, y0] = points[i]!;
    const [x1, y1] = points[i + 1]!;
    const n = Math.max(1, Math.round(Math.hypot(x1 - x0, y1 - y0) / step));
    for (let k = 0; k < n; k++) out.push([x0 + ((x1 - x0) * k) / n, y0 + ((y1 - y0) * k) / n]);
  }
  out.push(points[points.length - 1]!);
  return out;
}

/**
 * The cap: outer outline over the skull (volume above it) from the right side to the left side, then the
 * hairline back across the forehead. `hairline` runs from the right temple to the left temple.
 */
function capOutline(ctx: DrawContext, volume: number, hairline: readonly Point[], sideDrop = 0): Point[] {
  const { cx, cy, width: w, height: h } = ctx.geometry;
  const sideY = ctx.geometry.ears.y - ctx.geometry.ears.height * 0.42 + sideDrop;
  const outer: Point[] = [
    [cx + w * 1.02, sideY],
    [cx + w * 1.05 + volume * 0.35, cy - h * 0.5 - volume * 0.4],
    [cx + w * 0.72 + volume * 0.3, cy - h * 0.93 - volume * 0.85],
    [cx, cy - h - volume],
    [cx - w * 0.72 - volume * 0.3, cy - h * 0.93 - volume * 0.85],
    [cx - w * 1.05 - volume * 0.35, cy - h * 0.5 - volume * 0.4],
    [cx - w * 1.02, sideY],
  ];
  const inner: Point[] = [[cx - w * 0.93, sideY - 1.5], ...hairline.slice().reverse(), [cx + w * 0.93, sideY - 1.5]];
  return [...outer, ...inner];
}

/** The usual hairline: temples, then the middle of the forehead (lower on the side away from the parting). */
function naturalHairline(ctx: DrawContext, sweep = 0): Point[] {
  const { cx, width: w } = ctx.geometry;
  const y = ctx.geometry.hairline;
  const part = ctx.identity.hair.parting;
  return [
    [cx + w * 0.8, y + 3 - (part > 0 ? 0 : sweep)],
    [cx + w * 0.35, y + 0.6 + (part > 0 ? 0 : sweep * 0.9)],
    [cx + part * w * 0.3, y - 0.3],
    [cx - w * 0.35, y + 0.6 + (part > 0 ? sweep * 0.9 : 0)],
    [cx - w * 0.8, y + 3 - (part > 0 ? sweep : 0)],
  ];
}

/** A straight fringe ending `above` units over the brows. */
function fringeHairline(ctx: DrawContext, above: number): Point[] {
  const { cx, width: w } = ctx.geometry;
  const y = ctx.geometry.brows.y - above;
  return [[cx + w * 0.86, y + 1.5], [cx + w * 0.4, y - 0.2], [cx - w * 0.4, y - 0.2], [cx - w * 0.86, y + 1.5]];
}

/** A panel of hair hanging beside the face from the temple to `bottom`, flaring out by `flare`. */
function sidePanel(ctx: DrawContext, side: number, bottom: number, flare: number, wave: number): Point[] {
  const { cx, cy, width: w, height: h } = ctx.geometry;
  const outer: Point[] = [];
  const steps = 4;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const y = cy - h * 0.55 + (bottom - (cy - h * 0.55)) * t;
    const x = cx + side * (w * 1.08 + flare * t * t + (i % 2 === 1 ? wave : 0));
    outer.push([x, y]);
  }
  const innerBottom: Point = [cx + side * (w * 0.86 + flare * 0.5), bottom - 1];
  const inner: Point[] = [innerBottom, [cx + side * w * 0.9, cy + h * 0.05], [cx + side * w * 0.82, cy - h * 0.45]];
  return [...outer, ...inner];
}

/** Strand lines over the cap from the parting (photographs only). */
function strands(ctx: DrawContext, colour: Rgb, volume: number): string {
  if (ctx.look.shading !== "photo") return "";
  const { cx, cy, width: w, height: h } = ctx.geometry;
  const px = cx + ctx.identity.hair.parting * w * 0.3;
  let d = "";
  for (const t of [-0.6, 0.6]) {
    d += path`M${px} ${cy - h - volume * 0.7}Q${cx + t * w * 0.9} ${cy - h * 0.95 - volume * 0.5} ${cx + t * w * 1.05} ${ctx.geometry.hairline + 2}`;
  }
  return element("path", { d, fill: "none", stroke: hex(ctx.look.paint("hair", scale(colour, 0.7))), "stroke-width": 0.4, opacity: 0.3 });
}

/** The hair of the identity (after the style's changes), in its back and front layers. */
export function drawHair(ctx: DrawContext): HairShape {
  const hair = ctx.identity.hair;
  return drawHairStyle(ctx, hair.style, hair.rgb);
}

function drawHairStyle(ctx: DrawContext, style: HairStyle, colour: Rgb): HairShape {
  const { cx, cy, width: w, height: h, chin } = ctx.geometry;
  const hair = ctx.identity.hair;
  const fill = hairFill(ctx, colour);
  const backFill = hairFill(ctx, colour, 0.72);
  const jitter = Random.of("curls", ctx.identity.worldSeed, ctx.identity.id);
  const shape = (points: Point[], f = fill, tension = 1): string => filled(ctx, smoothPath(points, true, tension), "hair", colour, { fill: f });
  const volume = 1.4 + 4 * hair.volume;
  let back = "";
  let front = "";
  switch (style) {
    case "bald": {
      if (ctx.identity.hair.hairline > 0.4 || ctx.identity.sex === "man") {
        for (const side of [-1, 1]) {
          const y0 = cy - h * 0.4;
          const y1 = ctx.geometry.ears.y - ctx.geometry.ears.height * 0.2;
          front += filled(ctx, smoothPath([[cx + side * w * 0.93, y0], [cx + side * w * 1.06, (y0 + y1) / 2], [cx + side * w * 1.0, y1], [cx + side * w * 0.9, (y0 + y1) / 2]], true),
            "hair", mix(colour, ctx.identity.skin.rgb, 0.3), { stroke: "none" });
        }
      }
      if (ctx.look.shading === "photo") front += element("ellipse", { cx: cx - w * 0.25, cy: cy - h * 0.82, rx: w * 0.35, ry: h * 0.1, fill: "#ffffff", opacity: 0.18 });
      return { back, front };
    }
    case "buzz cut":
      front = shape(capOutline(ctx, 0.7, naturalHairline(ctx)), hex(ctx.look.paint("hair", mix(colour, ctx.identity.skin.rgb, 0.4))));
      return { back, front };
    case "mohawk": {
      front = shape(capOutline(ctx, 0.5, naturalHairline(ctx)), hex(ctx.look.paint("hair", mix(colour, ctx.identity.skin.rgb, 0.55))));
      const top = cy - h;
      const strip = path`M${cx - 2.8} ${ctx.geometry.hairline + 1}L${cx - 3.2} ${top - 5 - 5 * hair.volume}L${cx - 1} ${top - 2}L${cx} ${top - 7 - 6 * hair.volume}` +
        path`L${cx + 1} ${top - 2}L${cx + 3.2} ${top - 5 - 5 * hair.volume}L${cx + 2.8} ${ctx.geometry.hairline + 1}Z`;
      front += filled(ctx, strip, "hair", colour, { fill });
      return { back, front };
    }
    case "short":
    case "side parting":
    case "spiky":
    case "quiff": {
      const sweep = style === "side parting" ? 3.5 : 0;
      const v = style === "side parting" ? 1.5 + 2 * hair.volume : volume;
      front = shape(capOutline(ctx, v, naturalHairline(ctx, sweep))) + strands(ctx, colour, v);
      if (style === "side parting") {
        const px = cx + (hair.parting >= 0 ? 1 : -1) * w * 0.45;
        front += stroked(ctx, path`M${px} ${ctx.geometry.hairline + 0.5}Q${px} ${cy - h - v * 0.5} ${px + (px - cx) * 0.3} ${cy - h - v * 0.9}`, "skin", ctx.identity.skin.rgb, 0.6, 0.8);
      }
      if (style === "spiky") {
        let d = "";
        for (let i = 0; i < 7; i++) {
          const t = -0.8 + (1.6 * i) / 6;
          const bx = cx + t * w * 0.85;
          const by = cy - h * (0.98 - 0.3 * t * t) - v * 0.8;
          d += path`M${bx - 2.4} ${by + 2.5}L${bx + t * 2} ${by - 3 - 2 * hair.volume}L${bx + 2.4} ${by + 2.5}Z`;
        }
        front += filled(ctx, d, "hair", colour, { fill });
      }
      if (style === "quiff") {
        const side = hair.parting >= 0 ? 1 : -1;
        front += shape([
          [cx - side * w * 0.55, ctx.geometry.hairline + 1.5], [cx - side * w * 0.45, cy - h - v - 2],
          [cx + side * w * 0.1, cy - h - v - 5 - 3 * hair.volume], [cx + side * w * 0.6, cy - h - v - 2], [cx + side * w * 0.55, ctx.geometry.hairline + 2],
        ]);
      }
      return { back, front };
    }
    case "pixie cut": {
      // A fringe swept from the parting down to the other side of the forehead.
      const y = ctx.geometry.hairline;
      const browY = ctx.geometry.brows.y;
      let hairline: Point[] = [[cx + w * 0.8, y + 3], [cx + w * 0.45, y - 0.5], [cx - w * 0.1, y + 3.5], [cx - w * 0.55, browY - 2], [cx - w * 0.85, browY]];
      if (hair.parting < 0) hairline = hairline.map(([x, yy]): Point => [2 * cx - x, yy]).reverse();
      front = shape(capOutline(ctx, 1.2 + 2 * hair.volume, hairline, 2)) + strands(ctx, colour, 2);
      return { back, front };
    }
    case "bun":
    case "ponytail": {
      const v = 0.9 + hair.volume;
      if (style === "bun") {
        const r = 4 + 2.2 * hair.volume;
        back += element("circle", { cx: cx + hair.parting * 2, cy: cy - h - v - r * 0.55, r, fill });
        if (ctx.look.ink) back += element("circle", { cx: cx + hair.parting * 2, cy: cy - h - v - r * 0.55, r, fill: "none", stroke: hex(ctx.look.ink.colour), "stroke-width": ctx.look.ink.width });
      } else {
        const side = hair.parting >= 0 ? 1 : -1;
        const length = 0.55 + 0.5 * hair.length;
        back += shape([
          [cx + side * w * 0.55, cy - h * 0.85], [cx + side * w * 1.25, cy - h * 0.4], [cx + side * w * (1.35 + 0.1 * hair.volume), cy + h * length * 0.5],
          [cx + side * w * 1.15, cy + h * length], [cx + side * w * 0.95, cy + h * length * 0.3], [cx + side * w * 0.8, cy - h * 0.5],
        ], backFill);
      }
      front = shape(capOutline(ctx, v, naturalHairline(ctx))) + strands(ctx, colour, v);
      return { back, front };
    }
    case "bob":
    case "fringe":
    case "long":
    case "wavy": {
      // bob: to the jaw, no fringe; fringe: to the chin or shoulders with a straight fringe; long/wavy: past the shoulders.
      const long = style === "long" || style === "wavy";
      const bottom = long ? chin + 6 + 12 * hair.length : style === "fringe" ? chin - 2 + 10 * hair.length : cy + h * (0.3 + 0.35 * hair.length);
      const flare = long ? 4 + 4 * hair.volume : 1 + 2 * hair.volume;
      const wave = style === "wavy" ? 1.6 : 0;
      const backShape: Point[] = [
        [cx + w * 0.8, cy - h - volume * 0.6], [cx + w * 1.2, cy - h * 0.4], [cx + w * 1.1 + flare, bottom - 2],
        [cx + w * 0.9 + flare, bottom + 0.5], [cx - w * 0.9 - flare, bottom + 0.5], [cx - w * 1.1 - flare, bottom - 2],
        [cx - w * 1.2, cy - h * 0.4], [cx - w * 0.8, cy - h - volume * 0.6],
      ];
      back = shape(backShape, backFill);
      const hairline = style === "fringe" ? fringeHairline(ctx, 1.2 + hair.volume) : naturalHairline(ctx, 2);
      front = shape(capOutline(ctx, 1.5 + 3 * hair.volume, hairline, 0)) + strands(ctx, colour, 2);
      for (const side of [-1, 1]) front += shape(sidePanel(ctx, side, bottom, flare, wave * side), fill, 0.8);
      return { back, front };
    }
    case "curly":
    case "afro": {
      const afro = style === "afro";
      const radius = afro ? 3.6 : 2.8 + 0.6 * hair.volume;
      if (afro) {
        const big = w * (1.45 + 0.25 * hair.volume);
        const centreY = cy - h * 0.32;
        back += element("ellipse", { cx, cy: centreY, rx: big, ry: big * 1.02, fill: backFill });
        const ring: Point[] = [];
        for (let i = 0; i < 22; i++) {
          const a = Math.PI * (0.82 + (1.36 * i) / 21);
          ring.push([cx + Math.cos(a) * big, centreY + Math.sin(a) * big * 1.02]);
        }
        back += bumps(ring, radius, hex(ctx.look.paint("hair", scale(colour, 0.72))), jitter);
      } else {
        const bottom = cy + h * (0.2 + 0.6 * hair.length);
        const edge: Point[] = resample([
          [cx - w * 1.05, bottom], [cx - w * 1.25, cy - h * 0.3], [cx - w * 0.9, cy - h - volume * 0.6], [cx, cy - h - volume - 1],
          [cx + w * 0.9, cy - h - volume * 0.6], [cx + w * 1.25, cy - h * 0.3], [cx + w * 1.05, bottom],
        ], radius * 1.3);
        back += shape([...edge, [cx, cy]], backFill);
        back += bumps(edge, radius, hex(ctx.look.paint("hair", scale(colour, 0.72))), jitter);
      }
      const hairline = naturalHairline(ctx, 0);
      front = shape(capOutline(ctx, afro ? 2 : volume * 0.7, hairline));
      front += bumps(resample(hairline, radius * 1.1), radius * 0.7, hex(ctx.look.paint("hair", colour)), jitter);
      return { back, front };
    }
  }
}
