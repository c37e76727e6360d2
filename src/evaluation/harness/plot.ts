/**
 * The report's plot (HyperDreamBooth's point, §1 and §5: DreamBooth-level identity in a fraction of the time): each
 * method's identity similarity (mean with its 95 % CI as a vertical bar) against its seconds per person on a log axis,
 * as one inline SVG. Methods that personalise nobody (the base model's floor, the world's ceiling) are dashed
 * horizontal lines across the plot. Plain SVG, no script: it reads the same in any browser and in a saved page.
 */
import type { MethodResult } from "./summary.js";

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 64, right: 120, top: 20, bottom: 48 };
const COLOURS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#3d405b", "#bc4749"];

export const escapeHtml = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;");

/** Round numbers for a log axis between `low` and `high` (1, 2, 5 per decade). */
function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let decade = Math.floor(Math.log10(low)); decade <= Math.ceil(Math.log10(high)); decade++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** decade;
      if (t >= low && t <= high) ticks.push(t);
    }
  }
  return ticks;
}

/** The SVG plot of identity similarity against seconds per person, one colour per method. */
export function identityVersusTimePlot(methods: readonly MethodResult[]): string {
  const timed = methods.filter((m) => m.secondsPerPerson !== null && m.secondsPerPerson.mean > 0 && m.identity !== null);
  const lines = methods.filter((m) => m.secondsPerPerson === null && m.identity !== null);
  const ys = [...timed, ...lines].flatMap((m) => [m.identity!.low ?? m.identity!.mean, m.identity!.high ?? m.identity!.mean]);
  if (ys.length === 0) return "<p>(no method with an identity score to plot)</p>";
  const pad = Math.max(0.02, (Math.max(...ys) - Math.min(...ys)) * 0.08);
  const y0 = Math.min(...ys) - pad;
  const y1 = Math.max(...ys) + pad;
  const secs = timed.map((m) => m.secondsPerPerson!.mean);
  const x0 = secs.length ? Math.min(...secs) / 2 : 0.1;
  const x1 = secs.length ? Math.max(...secs) * 2 : 10;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (s: number): number => MARGIN.left + ((Math.log10(s) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * plotW;
  const y = (v: number): number => MARGIN.top + (1 - (v - y0) / (y1 - y0)) * plotH;
  const f = (n: number): string => n.toFixed(1);
  const parts: string[] = [];
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of logTicks(x0, x1)) {
    parts.push(`<line x1="${f(x(t))}" y1="${MARGIN.top + plotH}" x2="${f(x(t))}" y2="${MARGIN.top + plotH + 5}" stroke="#666"/>`,
      `<text x="${f(x(t))}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" font-size="11">${t >= 1 ? t : t.toPrecision(1)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    parts.push(`<line x1="${MARGIN.left - 5}" y1="${f(y(v))}" x2="${MARGIN.left}" y2="${f(y(v))}" stroke="#666"/>`,
      `<text x="${MARGIN.left - 8}" y="${f(y(v) + 4)}" text-anchor="end" font-size="11">${v.toFixed(3)}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle" font-size="12">seconds per person (log scale)</text>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">identity similarity (95 % CI)</text>`);
  // Labels of nearby points would overprint each other: each one moves down until it clears those already placed.
  const placed: { x: number; y: number }[] = [];
  const labelY = (lx: number, ly: number): number => {
    let yy = ly;
    while (placed.some((p) => Math.abs(p.x - lx) < 90 && Math.abs(p.y - yy) < 12)) yy += 12;
    placed.push({ x: lx, y: yy });
    return yy;
  };
  methods.forEach((m, i) => {
    if (m.identity === null) return;
    const colour = COLOURS[i % COLOURS.length]!;
    const name = escapeHtml(m.name);
    if (m.secondsPerPerson === null) {
      const yy = f(y(m.identity.mean));
      parts.push(`<line x1="${MARGIN.left}" y1="${yy}" x2="${MARGIN.left + plotW}" y2="${yy}" stroke="${colour}" stroke-dasharray="5 4"/>`,
        `<text x="${MARGIN.left + plotW + 6}" y="${f(Number(yy) + 4)}" font-size="11" fill="${colour}">${name}</text>`);
      return;
    }
    if (!(m.secondsPerPerson.mean > 0)) return;
    const cx = f(x(m.secondsPerPerson.mean));
    const cy = f(y(m.identity.mean));
    if (m.identity.low !== null && m.identity.high !== null) {
      parts.push(`<line x1="${cx}" y1="${f(y(m.identity.low))}" x2="${cx}" y2="${f(y(m.identity.high))}" stroke="${colour}" stroke-width="2"/>`);
    }
    parts.push(`<circle cx="${cx}" cy="${cy}" r="5" fill="${colour}"><title>${name}: ${m.identity.mean.toFixed(3)} at ${m.secondsPerPerson.mean.toFixed(2)} s per person</title></circle>`,
      `<text x="${f(Number(cx) + 8)}" y="${f(labelY(Number(cx) + 8, Number(cy) - 6))}" font-size="11" fill="${colour}">${name}</text>`);
  });
  return `<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" ` +
    `aria-label="identity similarity against seconds per person">${parts.join("")}</svg>`;
}
