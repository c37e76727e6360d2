/**
 * Scenes behind the person ("on the beach", "in a forest", ...) and their overlays (snow, bubbles), as SVG
 * over the 100 × 100 view box. Details (stars, windows, trees) are placed by the nuisance's detail seed, so
 * every photo of a scene differs a little while staying recognisably that scene.
 */
import type { DrawContext } from "./face-svg.js";
import { Random, streamId } from "./random.js";
import { element, hex, path, type Rgb } from "./svg.js";

function rect(x: number, y: number, width: number, height: number, fill: string, extra: Record<string, string | number> = {}): string {
  return element("rect", { x, y, width, height, fill, ...extra });
}

function gradient(ctx: DrawContext, stops: readonly (readonly [number, Rgb])[]): string {
  return `url(#${ctx.defs.linear(stops.map(([o, c]) => [o, ctx.look.paint("accessory", c)] as const))})`;
}

function colour(ctx: DrawContext, c: Rgb): string {
  return hex(ctx.look.paint("accessory", c));
}

function details(ctx: DrawContext, name: string): Random {
  return new Random(ctx.nuisance.detailSeed ^ streamId(name));
}

export function beach(ctx: DrawContext): string {
  const r = details(ctx, "beach");
  const horizon = 50 + r.uniform(-4, 4);
  let out = rect(0, 0, 100, horizon, gradient(ctx, [[0, [96, 168, 232]], [1, [196, 228, 246]]]));
  out += element("circle", { cx: r.uniform(10, 90), cy: r.uniform(8, 20), r: 6, fill: colour(ctx, [255, 244, 200]) });
  out += rect(0, horizon, 100, 16, gradient(ctx, [[0, [40, 120, 180]], [1, [70, 170, 200]]]));
  for (let i = 0; i < 3; i++) {
    const y = horizon + 4 + i * 4;
    out += element("path", { d: path`M0 ${y}Q25 ${y - 1.2} 50 ${y}T100 ${y}`, fill: "none", stroke: colour(ctx, [220, 240, 250]), "stroke-width": 0.6, opacity: 0.7 });
  }
  out += rect(0, horizon + 15, 100, 100 - horizon - 15, gradient(ctx, [[0, [236, 214, 164]], [1, [214, 186, 132]]]));
  return out;
}

export function forest(ctx: DrawContext): string {
  const r = details(ctx, "forest");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [150, 196, 140]], [1, [60, 104, 56]]]));
  for (let i = 0; i < 7; i++) {
    const x = i * 15 + r.uniform(-4, 4);
    const w = r.uniform(3, 6);
    out += rect(x, 0, w, 100, colour(ctx, [86 + r.uniform(-16, 16), 60, 40]));
  }
  for (let i = 0; i < 14; i++) {
    const shade: Rgb = [40 + r.uniform(0, 40), 100 + r.uniform(0, 60), 40 + r.uniform(0, 30)];
    out += element("circle", { cx: r.uniform(0, 100), cy: r.uniform(-5, 35), r: r.uniform(8, 16), fill: colour(ctx, shade), opacity: 0.9 });
  }
  out += rect(0, 82, 100, 18, colour(ctx, [70, 96, 50]));
  return out;
}

export function cityAtNight(ctx: DrawContext): string {
  const r = details(ctx, "city");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [8, 10, 32]], [1, [40, 30, 70]]]));
  let x = -2;
  while (x < 100) {
    const w = r.uniform(9, 16);
    const top = r.uniform(18, 55);
    out += rect(x, top, w - 1, 100 - top, colour(ctx, [24 + r.uniform(0, 14), 24, 44]));
    for (let wy = top + 3; wy < 96; wy += 5) {
      for (let wx = x + 2; wx < x + w - 3; wx += 4) {
        if (r.chance(0.4)) out += rect(wx, wy, 1.8, 2.4, colour(ctx, r.chance(0.8) ? [250, 214, 120] : [120, 220, 255]));
      }
    }
    x += w;
  }
  out += element("circle", { cx: r.uniform(15, 85), cy: r.uniform(6, 14), r: 4, fill: colour(ctx, [240, 240, 220]) });
  return out;
}

export function snow(ctx: DrawContext): string {
  const r = details(ctx, "snow");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [176, 192, 212]], [1, [226, 232, 240]]]));
  for (let i = 0; i < 5; i++) {
    const x = r.uniform(0, 100);
    const y = r.uniform(40, 60);
    out += element("path", { d: path`M${x - 8} ${y + 16}L${x} ${y}L${x + 8} ${y + 16}Z`, fill: colour(ctx, [70, 100, 90]) });
    out += element("path", { d: path`M${x - 3} ${y + 6}L${x} ${y}L${x + 3} ${y + 6}Z`, fill: colour(ctx, [250, 252, 255]) });
  }
  out += rect(0, 70, 100, 30, colour(ctx, [246, 248, 252]));
  return out;
}

export function snowflakes(ctx: DrawContext): string {
  const r = details(ctx, "snowflakes");
  let out = "";
  for (let i = 0; i < 45; i++) out += element("circle", { cx: r.uniform(0, 100), cy: r.uniform(0, 100), r: r.uniform(0.5, 1.3), fill: "#ffffff", opacity: 0.9 });
  return out;
}

export function space(ctx: DrawContext): string {
  const r = details(ctx, "space");
  let out = rect(0, 0, 100, 100, colour(ctx, [6, 6, 18]));
  const nebula = ctx.defs.radial([[0, ctx.look.paint("accessory", [120, 50, 160]), 0.7], [1, ctx.look.paint("accessory", [20, 10, 60]), 0]]);
  out += element("circle", { cx: r.uniform(10, 90), cy: r.uniform(10, 90), r: 35, fill: `url(#${nebula})` });
  for (let i = 0; i < 60; i++) out += element("circle", { cx: r.uniform(0, 100), cy: r.uniform(0, 100), r: r.uniform(0.2, 0.7), fill: colour(ctx, [255, 255, 240]) });
  const planet = ctx.defs.radial([[0, ctx.look.paint("accessory", [250, 180, 110])], [1, ctx.look.paint("accessory", [150, 70, 40])]], 0.35, 0.35, 0.7);
  const side = r.chance(0.5) ? 12 : 88;
  out += element("circle", { cx: side, cy: r.uniform(12, 30), r: r.uniform(7, 11), fill: `url(#${planet})` });
  return out;
}

export function underwater(ctx: DrawContext): string {
  const r = details(ctx, "underwater");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [60, 180, 210]], [1, [10, 60, 110]]]));
  for (let i = 0; i < 4; i++) {
    const x = r.uniform(0, 100);
    out += element("path", { d: path`M${x} 0L${x + 8} 0L${x + 22} 100L${x + 10} 100Z`, fill: "#ffffff", opacity: 0.09 });
  }
  for (let i = 0; i < 5; i++) {
    const x = r.uniform(0, 100);
    out += element("path", { d: path`M${x} 100Q${x - 4} 88 ${x + 1} 78Q${x + 5} 70 ${x} 62`, fill: "none", stroke: colour(ctx, [40, 130, 80]), "stroke-width": 2.2 });
  }
  return out;
}

/** Bubbles and a blue-green cast over everything (the water is in front of the face too). */
export function bubbles(ctx: DrawContext): string {
  const r = details(ctx, "bubbles");
  let out = rect(0, 0, 100, 100, colour(ctx, [20, 120, 160]), { opacity: 0.22 });
  for (let i = 0; i < 14; i++) {
    out += element("circle", { cx: r.uniform(0, 100), cy: r.uniform(0, 100), r: r.uniform(0.8, 2.2), fill: "none", stroke: "#e8faff", "stroke-width": 0.4, opacity: 0.85 });
  }
  return out;
}

export function sunset(ctx: DrawContext): string {
  const r = details(ctx, "sunset");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [70, 50, 120]], [0.45, [230, 100, 90]], [0.75, [250, 180, 90]], [1, [250, 200, 120]]]));
  out += element("circle", { cx: r.uniform(15, 85), cy: 70, r: 11, fill: colour(ctx, [255, 226, 150]) });
  out += element("path", { d: path`M0 76Q20 ${70 + r.uniform(-3, 3)} 45 75T100 73L100 100L0 100Z`, fill: colour(ctx, [60, 30, 50]) });
  return out;
}

/** A dark museum niche for statues. */
export function museum(ctx: DrawContext): string {
  const glow = ctx.defs.radial([[0, [92, 96, 106]], [1, [28, 30, 36]]], 0.5, 0.4, 0.7);
  return rect(0, 0, 100, 100, `url(#${glow})`);
}

/** A misty graveyard under a full moon, for zombies. */
export function graveyard(ctx: DrawContext): string {
  const r = details(ctx, "graveyard");
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [30, 40, 44]], [1, [70, 84, 76]]]));
  out += element("circle", { cx: r.uniform(12, 88), cy: 14, r: 7, fill: colour(ctx, [230, 232, 200]) });
  for (let i = 0; i < 4; i++) {
    const x = r.uniform(0, 95);
    out += element("path", { d: path`M${x} 100L${x} 80Q${x + 4} 74 ${x + 8} 80L${x + 8} 100Z`, fill: colour(ctx, [96, 104, 100]) });
  }
  out += rect(0, 86, 100, 14, colour(ctx, [40, 52, 40]));
  return out;
}

/** A blue grid of light, for robots. */
export function lab(ctx: DrawContext): string {
  let out = rect(0, 0, 100, 100, gradient(ctx, [[0, [14, 30, 60]], [1, [30, 70, 110]]]));
  let d = "";
  for (let i = 0; i <= 100; i += 10) d += path`M${i} 0L${i} 100M0 ${i}L100 ${i}`;
  out += element("path", { d, fill: "none", stroke: colour(ctx, [80, 200, 255]), "stroke-width": 0.3, opacity: 0.5 });
  return out;
}
