/**
 * Small SVG and colour helpers for the mini-world renderer.
 *
 * Every number that goes into the SVG text passes through `num` (rounded to 2 decimals), and every colour
 * through `hex` (integers), so the document is a pure function of its inputs and the rasteriser sees the same
 * bytes on every machine. The drawing space is a 100 × 100 view box whatever the output size.
 */

/** An sRGB colour, 0–255 per channel (fractions allowed until `hex` rounds them). */
export type Rgb = readonly [number, number, number];

/** A point in view-box units. */
export type Point = readonly [number, number];

/** A number for SVG text: rounded to 2 decimals, no "-0", no trailing zeros. */
export function num(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`cannot write ${value} into an SVG`);
  const rounded = Math.round(value * 100) / 100;
  return Object.is(rounded, -0) ? "0" : String(rounded);
}

function channel(value: number): string {
  const v = Math.max(0, Math.min(255, Math.round(value)));
  return v.toString(16).padStart(2, "0");
}

/** "#rrggbb". */
export function hex(colour: Rgb): string {
  return `#${channel(colour[0])}${channel(colour[1])}${channel(colour[2])}`;
}

/** Linear blend: t = 0 → a, t = 1 → b. */
export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Multiplies every channel (darker below 1, lighter above). */
export function scale(colour: Rgb, factor: number): Rgb {
  return [colour[0] * factor, colour[1] * factor, colour[2] * factor];
}

/** Perceived brightness, 0–255 (Rec. 601 weights). */
export function luma(colour: Rgb): number {
  return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2];
}

/** Pushes a colour away from (amount > 1) or towards (amount < 1) its own grey. */
export function saturate(colour: Rgb, amount: number): Rgb {
  const y = luma(colour);
  return [y + (colour[0] - y) * amount, y + (colour[1] - y) * amount, y + (colour[2] - y) * amount];
}

/** Clamped to the displayable range. */
export function clampRgb(colour: Rgb): Rgb {
  return [Math.max(0, Math.min(255, colour[0])), Math.max(0, Math.min(255, colour[1])), Math.max(0, Math.min(255, colour[2]))];
}

/** Palette interpolation: t in [0, 1] along the anchors, linearly between neighbours. */
export function along(anchors: readonly Rgb[], t: number): Rgb {
  const x = Math.max(0, Math.min(1, t)) * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(x));
  return mix(anchors[i]!, anchors[i + 1]!, x - i);
}

/** A point rotated by `degrees` about `centre`. */
export function rotate(point: Point, centre: Point, degrees: number): Point {
  const r = (degrees * Math.PI) / 180;
  const dx = point[0] - centre[0];
  const dy = point[1] - centre[1];
  return [centre[0] + dx * Math.cos(r) - dy * Math.sin(r), centre[1] + dx * Math.sin(r) + dy * Math.cos(r)];
}

/** Mirror image of points about the vertical line x = axis, in reverse order (to continue a closed outline). */
export function mirror(points: readonly Point[], axis: number): Point[] {
  return points.map(([x, y]): Point => [2 * axis - x, y]).reverse();
}

/**
 * A smooth curve through the points (Catmull–Rom turned into cubic Béziers). Closed: the outline joins its
 * end to its start smoothly; open: it starts and ends at the first and last points.
 */
export function smoothPath(points: readonly Point[], closed: boolean, tension = 1): string {
  const n = points.length;
  if (n < 2) throw new Error("smoothPath needs at least two points");
  const at = (i: number): Point => (closed ? points[(i + n) % n]! : points[Math.max(0, Math.min(n - 1, i))]!);
  let d = `M${num(points[0]![0])} ${num(points[0]![1])}`;
  const segments = closed ? n : n - 1;
  for (let i = 0; i < segments; i++) {
    const [p0, p1, p2, p3] = [at(i - 1), at(i), at(i + 1), at(i + 2)];
    const c1: Point = [p1[0] + ((p2[0] - p0[0]) / 6) * tension, p1[1] + ((p2[1] - p0[1]) / 6) * tension];
    const c2: Point = [p2[0] - ((p3[0] - p1[0]) / 6) * tension, p2[1] - ((p3[1] - p1[1]) / 6) * tension];
    d += `C${num(c1[0])} ${num(c1[1])} ${num(c2[0])} ${num(c2[1])} ${num(p2[0])} ${num(p2[1])}`;
  }
  return closed ? `${d}Z` : d;
}

/** A polygon path through the points (straight edges). */
export function polygonPath(points: readonly Point[]): string {
  return `M${points.map(([x, y]) => `${num(x)} ${num(y)}`).join("L")}Z`;
}

/** An SVG element with attributes (undefined values are left out). */
export function element(name: string, attributes: Record<string, string | number | undefined>, children = ""): string {
  let text = `<${name}`;
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    text += ` ${key}="${typeof value === "number" ? num(value) : value}"`;
  }
  return children === "" ? `${text}/>` : `${text}>${children}</${name}>`;
}

/** Path data with numbers rounded by `num`: path`M${x} ${y}L${x2} ${y2}`. */
export function path(strings: TemplateStringsArray, ...values: number[]): string {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += num(value) + strings[i + 1]!;
  });
  return out;
}
