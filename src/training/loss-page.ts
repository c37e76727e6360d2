/**
 * A training run's losses as a page: one self-contained HTML file with an SVG chart per series (the loss and
 * every named term the trainer logs), drawn from the JSONL log (log.ts) with a 50-step moving average over the
 * raw values. No scripts, no network: it opens from the output folder in any browser.
 */
import { writeFileAtomic } from "../util/atomic.js";
import { readTrainingLog } from "./log.js";

const WIDTH = 720;
const HEIGHT = 220;
const PAD = 40;

/** Writes `htmlFile` from `logFile`; returns the number of steps plotted. */
export function writeLossPage(logFile: string, htmlFile: string, title: string): number {
  const { steps } = readTrainingLog(logFile);
  steps.sort((a, b) => a.step - b.step);
  const series = new Map<string, { step: number; value: number }[]>();
  for (const line of steps) {
    const add = (name: string, value: number): void => {
      if (Number.isFinite(value)) (series.get(name) ?? series.set(name, []).get(name)!).push({ step: line.step, value });
    };
    add(`${line.job}: loss`, line.loss);
    for (const [term, value] of Object.entries(line.terms ?? {})) add(`${line.job}: ${term}`, value);
  }
  const charts = [...series].map(([name, points]) => chart(name, points)).join("\n");
  writeFileAtomic(htmlFile, `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:2em;color:#222}svg{background:#fafafa;border:1px solid #ddd;margin-bottom:1.5em}</style></head>
<body><h1>${escapeHtml(title)}</h1><p>${steps.length} steps, from ${escapeHtml(logFile)}; grey: every step, black: 50-step moving average.</p>
${charts}
</body></html>
`);
  return steps.length;
}

function chart(name: string, points: { step: number; value: number }[]): string {
  if (points.length === 0) return "";
  const xs = points.map((p) => p.step);
  const ys = points.map((p) => p.value);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number): number => PAD + ((x - x0) / Math.max(x1 - x0, 1)) * (WIDTH - 2 * PAD);
  const sy = (y: number): number => HEIGHT - PAD + -((y - y0) / Math.max(y1 - y0, 1e-12)) * (HEIGHT - 2 * PAD);
  const line = (values: number[]): string => values.map((y, i) => `${sx(xs[i]!).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  const averaged = ys.map((_, i) => {
    const window = ys.slice(Math.max(0, i - 49), i + 1);
    return window.reduce((a, b) => a + b, 0) / window.length;
  });
  return `<svg width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeHtml(name)}">
<text x="${PAD}" y="20" font-size="14">${escapeHtml(name)}</text>
<text x="4" y="${PAD + 4}" font-size="11">${y1.toPrecision(3)}</text><text x="4" y="${HEIGHT - PAD + 4}" font-size="11">${y0.toPrecision(3)}</text>
<text x="${PAD}" y="${HEIGHT - 10}" font-size="11">step ${x0}</text><text x="${WIDTH - PAD - 60}" y="${HEIGHT - 10}" font-size="11">step ${x1}</text>
<polyline fill="none" stroke="#bbb" stroke-width="1" points="${line(ys)}"/>
<polyline fill="none" stroke="#000" stroke-width="1.5" points="${line(averaged)}"/>
</svg>`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
