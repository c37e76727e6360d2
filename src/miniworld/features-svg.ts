/**
 * Eyes, brows, nose and mouth as SVG, shaped by the identity and the expression (geometry.ts), plus the
 * feature-level details of some styles: zombie sockets and stitches, robot seams and glowing eyes, carved
 * statue eyes.
 */
import { filled, lit, paint, stroked, type DrawContext } from "./face-svg.js";
import { element, hex, mix, path, saturate, scale, type Rgb } from "./svg.js";

const SCLERA: Rgb = [240, 234, 228];
const PUPIL: Rgb = [16, 12, 12];
const LID: Rgb = [44, 28, 24];
const MOUTH_INSIDE: Rgb = [74, 22, 28];
const TEETH: Rgb = [242, 238, 228];

/** Both eyes: socket shading, white, iris and pupil (clipped to the lids), lid line and crease. */
export function drawEyes(ctx: DrawContext): string {
  const { geometry: g, identity, extras } = ctx;
  const e = g.eyes;
  const skin = identity.skin.rgb;
  const w = e.halfWidth;
  const h = e.halfHeight;
  let out = "";
  for (const [x, side] of [[e.left, -1], [e.right, 1]] as const) {
    const angle = -side * e.tilt;
    const almond = path`M${x - w} ${e.y}Q${x} ${e.y - 2 * h} ${x + w} ${e.y}Q${x} ${e.y + 1.7 * h} ${x - w} ${e.y}Z`;
    let eye = "";
    if (extras.zombie) {
      eye += element("ellipse", { cx: x, cy: e.y + 0.3, rx: w * 1.45, ry: h * 2.3 + 0.8, fill: hex([62, 30, 58]), opacity: 0.65 });
    } else if (ctx.look.shading === "photo") {
      const fade = ctx.defs.radial([[0, scale(ctx.look.paint("skin", skin), 0.7), 0.5], [1, scale(ctx.look.paint("skin", skin), 0.7), 0]]);
      eye += element("ellipse", { cx: x, cy: e.y - h * 0.4, rx: w * 1.45, ry: h * 2.1 + 1, fill: `url(#${fade})` });
    }
    const sclera: Rgb = extras.robot ? [28, 30, 38] : extras.zombie ? [226, 214, 150] : SCLERA;
    eye += filled(ctx, almond, "sclera", sclera);
    if (!extras.statue) {
      const clip = ctx.defs.clip(element("path", { d: almond }));
      const r = Math.min(h * 1.15, w * 0.62);
      const gaze = x + g.turn * 0.25;
      let iris = identity.eyes.rgb;
      if (extras.robot) iris = saturate(mix(iris, [255, 255, 255], 0.35), 1.6);
      if (extras.zombie) iris = mix(iris, [200, 200, 190], 0.45);
      let inside = element("circle", { cx: gaze, cy: e.y, r, fill: paint(ctx, "iris", iris) });
      inside += element("circle", { cx: gaze, cy: e.y, r: r * 0.34, fill: paint(ctx, "pupil", extras.robot ? [255, 255, 255] : PUPIL) });
      if (ctx.look.shading === "photo") inside += element("circle", { cx: gaze - r * 0.3, cy: e.y - r * 0.35, r: Math.max(0.35, r * 0.22), fill: "#ffffff", opacity: 0.8 });
      eye += element("g", { "clip-path": `url(#${clip})` }, inside);
    } else {
      eye += element("circle", { cx: x, cy: e.y, r: Math.min(h, w * 0.55), fill: paint(ctx, "iris", [200, 200, 200]), opacity: 0.5 });
    }
    eye += stroked(ctx, path`M${x - w} ${e.y}Q${x} ${e.y - 2 * h} ${x + w} ${e.y}`, "line", LID, 0.45 + 0.6 * identity.eyes.lashes);
    if (identity.eyes.lashes > 0.55) eye += stroked(ctx, path`M${x + side * w} ${e.y}L${x + side * (w + 0.9)} ${e.y - 0.9}`, "line", LID, 0.5);
    eye += stroked(ctx, path`M${x - w * 0.85} ${e.y + 0.2}Q${x} ${e.y + 1.6 * h} ${x + w * 0.85} ${e.y + 0.2}`, "skin", scale(skin, 0.7), 0.3, 0.7);
    eye += stroked(ctx, path`M${x - w * 0.8} ${e.y - h * 1.2 - 0.4}Q${x} ${e.y - h * 2.5 - 0.6} ${x + w * 0.9} ${e.y - h * 1.1 - 0.4}`, "skin", scale(skin, 0.72), 0.4, 0.55);
    out += element("g", { transform: path`rotate(${angle} ${x} ${e.y})` }, eye);
  }
  return out;
}

/** Both brows: tapered, arched and angled as the identity says, lowered at the inner end when angry. */
export function drawBrows(ctx: DrawContext): string {
  const { geometry: g, identity } = ctx;
  const b = identity.brows;
  const t = g.brows.thickness;
  let out = "";
  for (const [x, side] of [[g.eyes.left, -1], [g.eyes.right, 1]] as const) {
    const innerX = x - side * g.eyes.halfWidth * 1.0;
    const outerX = x + side * g.eyes.halfWidth * (1.05 + 0.35 * b.length);
    const innerY = g.brows.y + g.brows.innerDrop;
    const outerY = g.brows.y - b.angle * 1.4 + 0.4;
    const midX = (innerX + outerX) / 2 + side * 0.6;
    const midY = g.brows.y - (0.5 + 1.5 * b.arch);
    const controlTopX = 2 * midX - (innerX + outerX) / 2;
    const controlTopY = 2 * (midY - t * 0.45) - (innerY - t / 2 + outerY - t * 0.15) / 2;
    const controlBottomY = 2 * (midY + t * 0.4) - (innerY + t / 2 + outerY + t * 0.1) / 2;
    const d = path`M${innerX} ${innerY - t / 2}Q${controlTopX} ${controlTopY} ${outerX} ${outerY - t * 0.15}` +
      path`L${outerX} ${outerY + t * 0.1}Q${controlTopX} ${controlBottomY} ${innerX} ${innerY + t / 2}Z`;
    out += filled(ctx, d, "brow", b.rgb, { stroke: "none" });
  }
  return out;
}

/** The nose: bridge shadow on the side away from the light, wings, nostrils, the curve under the tip. */
export function drawNose(ctx: DrawContext): string {
  const { geometry: g, identity } = ctx;
  const n = g.nose;
  const skin = identity.skin.rgb;
  const w = n.halfWidth;
  const lightX = Math.cos((ctx.nuisance.lightAngle * Math.PI) / 180);
  const shadowSide = lightX <= 0 ? 1 : -1;
  let out = "";
  const bridge = 0.5 + 0.7 * identity.nose.bridge;
  out += stroked(ctx, path`M${n.x + shadowSide * 1.3} ${n.top + 1}Q${n.x + shadowSide * 1.6} ${(n.top + n.tip) / 2} ${n.x + shadowSide * w * 0.75} ${n.tip - 1.2}`,
    "skin", scale(skin, 0.74), bridge, ctx.look.shading === "photo" ? 0.55 : 0.9);
  if (ctx.look.shading === "photo") {
    const tip = 0.9 + 0.9 * identity.nose.tip;
    out += element("circle", { cx: n.x - shadowSide * 0.3, cy: n.tip - tip * 0.9, r: tip, fill: paint(ctx, "skin", scale(skin, 1.1)), opacity: 0.5 });
  }
  // The shadow under the nose spans its full width: at 64 × 64 it is what shows how wide a nose is.
  out += element("path", {
    d: path`M${n.x - w} ${n.tip - 0.2}Q${n.x} ${n.tip + 2.6 + identity.nose.tip} ${n.x + w} ${n.tip - 0.2}Q${n.x} ${n.tip + 1.2} ${n.x - w} ${n.tip - 0.2}Z`,
    fill: paint(ctx, "skin", scale(skin, 0.68)), opacity: ctx.look.shading === "photo" ? 0.75 : 0.5,
  });
  for (const side of [-1, 1]) {
    out += stroked(ctx, path`M${n.x + side * w * 0.7} ${n.tip - 2}Q${n.x + side * (w + 0.5)} ${n.tip - 0.6} ${n.x + side * w * 0.75} ${n.tip + 0.4}`,
      "skin", scale(skin, 0.62), 0.6, 0.9);
    out += element("ellipse", {
      cx: n.x + side * w * 0.42, cy: n.tip + 0.1, rx: 0.55 + 0.35 * identity.nose.width, ry: 0.4,
      fill: paint(ctx, "skin", scale(skin, 0.42)),
    });
  }
  out += stroked(ctx, path`M${n.x - w * 0.55} ${n.tip + 0.2}Q${n.x} ${n.tip + 1.3 + identity.nose.tip} ${n.x + w * 0.55} ${n.tip + 0.2}`,
    "skin", scale(skin, 0.62), 0.5, 0.7);
  return out;
}

/** Lips, and the inside of the mouth and teeth when the expression opens it. */
export function drawMouth(ctx: DrawContext): string {
  const { geometry: g, identity, extras } = ctx;
  const { x, y, halfWidth: w } = g.mouth;
  let ul = g.mouth.upperLip;
  let ll = g.mouth.lowerLip;
  const lip = extras.zombie ? mix(identity.mouth.rgb, [90, 70, 100], 0.6) : identity.mouth.rgb;
  const dark = scale(lip, 0.35);
  let out = "";
  switch (g.expression) {
    case "surprised": {
      const rx = w * 0.42;
      const ry = 1.6 + ll * 0.8;
      out += element("ellipse", { cx: x, cy: y + 0.8, rx: rx + ul * 0.8, ry: ry + (ul + ll) * 0.5, fill: lit(ctx, "lip", lip, 0.6) });
      out += element("ellipse", { cx: x, cy: y + 0.9, rx, ry, fill: paint(ctx, "mouth", MOUTH_INSIDE) });
      return out;
    }
    case "smile":
    case "open": {
      const lift = g.expression === "smile" ? 2.2 : 0;
      const spread = g.expression === "smile" ? 1.12 : 0.95;
      const [lx, rx, cy] = [x - w * spread, x + w * spread, y - lift];
      const depth = g.expression === "smile" ? 3.8 : 5.2;
      const top = g.expression === "smile" ? y - 0.2 : y - 0.6;
      const opening = path`M${lx} ${cy}Q${x} ${top * 2 - cy} ${rx} ${cy}Q${x} ${y + depth} ${lx} ${cy}Z`;
      out += filled(ctx, opening, "mouth", MOUTH_INSIDE);
      out += filled(ctx, path`M${lx + 0.6} ${cy + 0.1}Q${x} ${top * 2 - cy} ${rx - 0.6} ${cy + 0.1}Q${x} ${y + (g.expression === "smile" ? 1.6 : 1.4)} ${lx + 0.6} ${cy + 0.1}Z`,
        "teeth", TEETH, { stroke: "none" });
      out += filled(ctx, path`M${lx} ${cy}Q${x} ${top * 2 - cy - ul * 2.2} ${rx} ${cy}Q${x} ${top * 2 - cy} ${lx} ${cy}Z`, "lip", lip, { fill: lit(ctx, "lip", lip, 0.6) });
      out += filled(ctx, path`M${lx} ${cy}Q${x} ${y + depth} ${rx} ${cy}Q${x} ${y + depth + ll * 1.5} ${lx} ${cy}Z`, "lip", lip, { fill: lit(ctx, "lip", lip, 0.6) });
      if (g.expression === "smile" && ctx.look.shading === "photo") {
        for (const side of [-1, 1]) {
          const cornerX = x + side * w * spread;
          out += stroked(ctx, path`M${cornerX + side * 0.6} ${cy - 1.6}Q${cornerX + side * 1.6} ${cy} ${cornerX + side * 0.5} ${cy + 1.4}`, "skin", scale(identity.skin.rgb, 0.72), 0.4, 0.6);
        }
      }
      return out;
    }
    default: {
      const angry = g.expression === "angry";
      if (angry) {
        ul *= 0.7;
        ll *= 0.7;
      }
      const corner = angry ? 1.2 : 0.2;
      const middle = angry ? y - 0.5 : y + 0.3;
      const [lx, rx, cy] = [x - w * (angry ? 0.92 : 1), x + w * (angry ? 0.92 : 1), y + corner];
      const upper = path`M${lx} ${cy}Q${x - w * 0.45} ${y - ul * 1.35} ${x} ${y - ul * 0.75}Q${x + w * 0.45} ${y - ul * 1.35} ${rx} ${cy}` +
        path`Q${x} ${middle * 2 - cy} ${lx} ${cy}Z`;
      const lower = path`M${lx} ${cy}Q${x} ${middle * 2 - cy} ${rx} ${cy}Q${x} ${y + ll * 2.1} ${lx} ${cy}Z`;
      out += filled(ctx, lower, "lip", lip, { fill: lit(ctx, "lip", lip, 0.6) });
      out += filled(ctx, upper, "lip", scale(lip, 0.93), { fill: lit(ctx, "lip", scale(lip, 0.93), 0.6) });
      out += stroked(ctx, path`M${lx - 0.3} ${cy}Q${x} ${middle * 2 - cy} ${rx + 0.3} ${cy}`, "lip", dark, 0.6);
      return out;
    }
  }
}

/** Zombie stitches and robot seams and rivets, drawn over the finished face. */
export function drawFaceDetails(ctx: DrawContext): string {
  const { geometry: g, extras } = ctx;
  let out = "";
  if (extras.zombie) {
    const [x0, y0, x1, y1] = [g.cx + g.width * 0.2, g.eyes.y + 3.5, g.cx + g.width * 0.72, g.eyes.y + 9];
    let stitches = path`M${x0} ${y0}L${x1} ${y1}`;
    for (let i = 1; i < 5; i++) {
      const t = i / 5;
      const sx = x0 + (x1 - x0) * t;
      const sy = y0 + (y1 - y0) * t;
      stitches += path`M${sx + 0.9} ${sy - 1}L${sx - 0.9} ${sy + 1}`;
    }
    out += element("path", { d: stitches, fill: "none", stroke: hex([70, 20, 24]), "stroke-width": 0.5 });
    out += element("path", { d: path`M${g.cx - g.width * 0.6} ${g.brows.y - 4}l2 2l-1 2`, fill: "none", stroke: hex([120, 30, 30]), "stroke-width": 0.6 });
  }
  if (extras.robot) {
    const seam = hex([60, 66, 80]);
    let seams = path`M${g.cx - g.width * 0.8} ${g.brows.y - 3.5}Q${g.cx} ${g.brows.y - 5} ${g.cx + g.width * 0.8} ${g.brows.y - 3.5}`;
    for (const side of [-1, 1]) seams += path`M${g.mouth.x + side * (g.mouth.halfWidth + 0.5)} ${g.mouth.y + 0.5}L${g.mouth.x + side * (g.mouth.halfWidth + 1.2)} ${g.chin - 2}`;
    out += element("path", { d: seams, fill: "none", stroke: seam, "stroke-width": 0.5 });
    for (const [px, py] of [[g.cx - g.width * 0.78, g.eyes.y + 1], [g.cx + g.width * 0.78, g.eyes.y + 1], [g.cx - g.width * 0.6, g.chin - 6], [g.cx + g.width * 0.6, g.chin - 6]] as const) {
      out += element("circle", { cx: px, cy: py, r: 0.7, fill: hex([200, 206, 216]), stroke: seam, "stroke-width": 0.25 });
    }
  }
  return out;
}
