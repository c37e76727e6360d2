/**
 * The evaluation's report as one HTML page (HyperDreamBooth §5: Table 1 and the ablations, with what they were measured
 * on): the plot of identity similarity against seconds per person, the tables of means with 95 % CIs per method and per
 * prompt, a grid of images per identity (methods by prompt, every seed, beside the reference photo), and the provenance
 * (commit, command, thread count, sha256 of every model file measured). Self-contained but for the images, which it
 * references relative to itself (they are in the cache beside it: thousands of them would make an embedded page of
 * tens of megabytes); no script, no external style sheet.
 */
import type { Provenance } from "../../util/provenance.js";
import { escapeHtml, identityVersusTimePlot } from "./plot.js";
import { formatSummary, type EvalResults, type ResultEntry, type ScoreSummaries } from "./summary.js";

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}
th{background:#f3f3f3}td.l,th.l{text-align:left}img.t{width:64px;height:64px;image-rendering:pixelated;margin:1px}
.grid td{vertical-align:top;text-align:center}code{font-size:12px}.note{color:#555;font-size:13px}`;

const percent = (s: ScoreSummaries["style"]): string =>
  s === null ? "–" : s.halfWidth === null ? `${(100 * s.mean).toFixed(1)} %` : `${(100 * s.mean).toFixed(1)} ± ${(100 * s.halfWidth).toFixed(1)} %`;

/** Forward slashes whatever the platform: the page's links are URLs. */
const href = (relative: string): string => escapeHtml(relative.split("\\").join("/"));

function overallTable(results: EvalResults): string {
  const rows = results.methods.map((m) => {
    const phases = Object.entries(m.phases).map(([p, s]) => `${p} ${s.toFixed(2)}`).join(", ");
    return `<tr><td class="l"><b>${escapeHtml(m.name)}</b></td><td class="l">${escapeHtml(m.description)}</td><td>${formatSummary(m.identity)}</td>` +
      `<td>${percent(m.style)}</td><td>${formatSummary(m.imageSimilarity)}</td><td>${formatSummary(m.secondsPerPerson, 2)}</td>` +
      `<td class="l">${escapeHtml(phases)}</td><td class="l"><code>${escapeHtml(m.key)}</code></td></tr>`;
  });
  return `<table><tr><th class="l">method</th><th class="l">what</th><th>identity (Face Rec role)</th><th>style (CLIP-T role)</th>` +
    `<th>image similarity (DINO / CLIP-I role)</th><th>seconds per person</th><th class="l">seconds per phase</th><th class="l">cache key</th></tr>${rows.join("")}</table>`;
}

function perPromptTables(results: EvalResults): string {
  const names = results.methods.map((m) => m.name);
  const table = (title: string, cell: (s: ScoreSummaries) => string): string =>
    `<h3>${title}</h3><table><tr><th class="l">prompt</th><th class="l">expected style</th>${names.map((n) => `<th>${escapeHtml(n)}</th>`).join("")}</tr>` +
    results.perPrompt.map((p) => `<tr><td class="l"><code>${escapeHtml(p.prompt)}</code></td><td class="l">${escapeHtml(p.expectedStyle)}</td>` +
      `${names.map((n) => `<td>${cell(p.methods[n]!)}</td>`).join("")}</tr>`).join("") + "</table>";
  return table("Identity similarity", (s) => formatSummary(s.identity)) + table("Style accuracy", (s) => percent(s.style)) +
    table("Image similarity", (s) => formatSummary(s.imageSimilarity));
}

function identityGrids(results: EvalResults): string {
  const byKey = new Map<string, ResultEntry[]>();
  for (const e of results.entries) {
    const key = `${e.identity}\u0000${e.method}\u0000${e.prompt}`;
    byKey.set(key, [...(byKey.get(key) ?? []), e]);
  }
  return results.identities.map((id) => {
    const reference = results.references[String(id)];
    const header = `<tr><th class="l">method</th>${results.prompts.map((p) => `<th>${escapeHtml(p.text)}</th>`).join("")}</tr>`;
    const rows = results.methods.map((m) => `<tr><td class="l">${escapeHtml(m.name)}</td>${results.prompts.map((p) => {
      const entries = (byKey.get(`${id}\u0000${m.name}\u0000${p.text}`) ?? []).sort((a, b) => a.seed - b.seed);
      return `<td>${entries.map((e) => `<img class="t" src="${href(e.image)}" alt="${escapeHtml(`${m.name}, seed ${e.seed}`)}" ` +
        `title="${escapeHtml(`${m.name}, seed ${e.seed}: identity ${e.scores.identity.toFixed(3)}, style ${e.scores.predictedStyle}, image ${e.scores.imageSimilarity.toFixed(3)}`)}">`).join("")}</td>`;
    }).join("")}</tr>`).join("");
    return `<h3 id="id-${id}">Identity ${id}</h3><p>reference photo: ${reference ? `<img class="t" src="${href(reference)}" alt="reference ${id}">` : "–"}</p>` +
      `<table class="grid">${header}${rows}</table>`;
  }).join("\n");
}

function provenanceSection(record: Provenance | null): string {
  if (record === null) return "<p>(no provenance recorded)</p>";
  const files = Object.entries(record.files).map(([file, hash]) => `<tr><td class="l"><code>${escapeHtml(file)}</code></td><td class="l"><code>${hash}</code></td></tr>`).join("");
  return `<table><tr><th class="l">commit</th><td class="l"><code>${escapeHtml(record.commit ?? "(not a git checkout)")}</code>${record.dirty ? " (with uncommitted changes)" : ""}</td></tr>` +
    `<tr><th class="l">command</th><td class="l"><code>${escapeHtml(record.command)}</code></td></tr>` +
    `<tr><th class="l">threads</th><td class="l">${record.threads}</td></tr><tr><th class="l">node</th><td class="l">${escapeHtml(record.node)}</td></tr>` +
    `<tr><th class="l">versions</th><td class="l">${escapeHtml(Object.entries(record.versions).map(([k, v]) => `${k} ${v}`).join(", ") || "–")}</td></tr>` +
    `<tr><th class="l">date</th><td class="l">${escapeHtml(record.date)}</td></tr></table>` +
    `<h3>Model files measured (sha256)</h3><table><tr><th class="l">file</th><th class="l">sha256</th></tr>${files}</table>`;
}

/** The report page of `results` (written as report.html beside results.json; `blindPage` names the blind page). */
export function reportHtml(results: EvalResults, options: { blindPage?: string } = {}): string {
  const g = results.generation;
  const c = results.counts;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HyperDreamBooth evaluation (mini-world)</title><style>${STYLE}</style></head><body>
<h1>Evaluation: ${results.methods.map((m) => escapeHtml(m.name)).join(", ")}</h1>
<p>${results.identities.length} held-out identities × ${results.prompts.length} prompts × ${results.seeds.length} seed${results.seeds.length === 1 ? "" : "s"} (${results.seeds.join(", ")}); one reference
photo per identity. Sampling: <code>${escapeHtml(JSON.stringify(g))}</code>. Means over identities × prompts × seeds with Student-t 95 % confidence
intervals (HyperDreamBooth §5, Table 1's metrics in the mini-world's roles). This run made ${c.filesMade} person files and ${c.imagesMade} images, and
reused ${c.filesReused} files and ${c.imagesReused} images from the cache${c.rescored ? ` (${c.rescored} rescored)` : ""}.
${options.blindPage ? `A blind side-by-side page for judging identity and style by eye: <a href="${href(options.blindPage)}">${escapeHtml(options.blindPage)}</a>.` : ""}</p>
<h2>Identity similarity against time per person</h2>
${identityVersusTimePlot(results.methods)}
<p class="note">Seconds per person: wall time with the models loaded, one person at a time, on ${results.provenance?.threads ?? "?"} threads
(the Personalizer's total for ours and its ablations; DreamBooth one identity per batch). The base model and the world's renders are dashed lines.</p>
<h2>All prompts</h2>
${overallTable(results)}
<p class="note">identity: cosine of the identity network's embeddings with the reference photo; style: the prompt-fidelity network names the
prompted style; image similarity: cosine of the prompt-fidelity network's features with the reference photo (not the HyperNetwork's encoder).</p>
<h2>Per prompt</h2>
${perPromptTables(results)}
<h2>Images per identity</h2>
<p class="note">One row per method, one column per prompt, every seed; hover an image for its scores.</p>
${identityGrids(results)}
<h2>Provenance</h2>
${provenanceSection(results.provenance)}
</body></html>
`;
}
