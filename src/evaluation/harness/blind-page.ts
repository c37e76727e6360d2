/**
 * The blind side-by-side page (HyperDreamBooth §5's user study: people chose which image better kept the subject's
 * identity and which better followed the prompt, not knowing the method): per identity and prompt, the reference
 * photo and each method's image of the first seed in an order shuffled by a seeded generator (the same page for the
 * same seed), unlabelled. Clicking an image reveals its method; per group the judge marks the best identity and the
 * best style, and the page turns the marks into JSON to copy. Plain JavaScript, no framework, and the images are
 * embedded (data URLs): a file name in the cache names its method, so linking them would give the answer away.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { hash32, streamId } from "../../util/hash.js";
import { mulberry32 } from "../../util/random.js";
import { escapeHtml } from "./plot.js";
import type { EvalResults } from "./summary.js";

/** Fisher–Yates with `random` (a copy; the input is left as it is). */
export function seededShuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The order of one group's methods: seeded by the page's seed, the identity and the prompt. */
export function groupOrder(methods: readonly string[], seed: number, identity: number, prompt: string): string[] {
  return seededShuffle(methods, mulberry32(hash32(seed, identity, streamId(prompt))));
}

const dataUrl = (file: string): string => `data:image/png;base64,${readFileSync(file).toString("base64")}`;

const SCRIPT = `
const labels = JSON.parse(atob(document.getElementById("labels").textContent.trim()));
document.querySelectorAll("figure[data-k]").forEach((f) => f.querySelector("img").addEventListener("click", () => {
  f.querySelector("figcaption").textContent = labels[f.dataset.k]; f.classList.add("shown");
}));
document.querySelectorAll("button.reveal").forEach((b) => b.addEventListener("click", () => {
  b.closest("section").querySelectorAll("figure[data-k]").forEach((f) => { f.querySelector("figcaption").textContent = labels[f.dataset.k]; f.classList.add("shown"); });
}));
document.getElementById("export").addEventListener("click", () => {
  const choices = [...document.querySelectorAll("section[data-identity]")].map((s) => {
    const pick = (what) => { const c = s.querySelector('input[data-what="' + what + '"]:checked'); return c ? labels[c.value] : null; };
    return { identity: Number(s.dataset.identity), prompt: s.dataset.prompt, bestIdentity: pick("identity"), bestStyle: pick("style") };
  });
  document.getElementById("choices").value = JSON.stringify(choices, null, 1);
});`;

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;color:#222}section{border-top:1px solid #ccc;padding:8px 0}
figure{display:inline-block;margin:4px 8px;text-align:center;vertical-align:top}img{width:128px;height:128px;image-rendering:pixelated;cursor:pointer}
figure.ref img{cursor:default;outline:3px solid #888}figcaption{font-size:12px;min-height:1.2em;color:#a00}label{font-size:12px;display:block}
textarea{width:100%;height:200px}`;

/**
 * The blind page of `results` (read from `outDir`, where the entries' images are), leaving out `exclude` (the world's
 * renders: a ceiling, not a method to judge). `seed` fixes the shuffle.
 */
export function blindPageHtml(results: EvalResults, outDir: string, options: { seed: number; exclude?: readonly string[] }): string {
  const methods = results.methods.map((m) => m.name).filter((m) => !(options.exclude ?? []).includes(m));
  const seed = results.seeds[0];
  const labels: string[] = [];
  const sections: string[] = [];
  for (const id of results.identities) {
    for (const prompt of results.prompts) {
      const images = new Map(results.entries.filter((e) => e.identity === id && e.prompt === prompt.text && e.seed === seed && methods.includes(e.method))
        .map((e) => [e.method, e.image] as const));
      const order = groupOrder(methods.filter((m) => images.has(m)), options.seed, id, prompt.text);
      if (order.length === 0) continue;
      const group = `g${sections.length}`;
      const reference = results.references[String(id)];
      const figures = order.map((method) => {
        const k = labels.push(method) - 1;
        return `<figure data-k="${k}"><img src="${dataUrl(path.join(outDir, images.get(method)!))}" alt="candidate"><figcaption></figcaption>` +
          `<label><input type="radio" name="${group}-identity" data-what="identity" value="${k}"> best identity</label>` +
          `<label><input type="radio" name="${group}-style" data-what="style" value="${k}"> best style</label></figure>`;
      });
      sections.push(`<section data-identity="${id}" data-prompt="${escapeHtml(prompt.text)}"><h3>${escapeHtml(prompt.text)}</h3>` +
        (reference ? `<figure class="ref"><img src="${dataUrl(path.join(outDir, reference))}" alt="reference"><figcaption style="color:#222">reference photo</figcaption></figure>` : "") +
        `${figures.join("")}<p><button class="reveal">reveal all labels</button></p></section>`);
    }
  }
  // Labels as base64 JSON: not readable at a glance in the page, revealed by the script on click.
  const encoded = Buffer.from(JSON.stringify(labels), "utf8").toString("base64");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Blind comparison</title><style>${STYLE}</style></head><body>
<h1>Blind side-by-side comparison</h1>
<p>For each person (the reference photo, outlined) and prompt, ${methods.length} methods' images in a shuffled order (seed ${options.seed}; generation seed ${seed}).
Mark the image that best keeps the person's identity and the one that best follows the prompt; click an image to reveal its method.
At the end, "export my choices" writes them as JSON to copy.</p>
${sections.join("\n")}
<p><button id="export">export my choices</button></p><textarea id="choices" readonly></textarea>
<script type="application/octet-stream" id="labels">${encoded}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
