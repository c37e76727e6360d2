/**
 * Training images for the metric networks: a fixed list of mini-world renders (identity, nuisance seed, style),
 * drawn from a seed, rendered once into one uint8 tensor (N, H, W, 3) and optionally cached in the work folder
 * (a safetensors file whose metadata holds a hash of the list, so a changed list is never served stale).
 *
 * Batches are made on the fly: rows picked by index, then exactly imagesToTensor's arithmetic (÷255, ×2, −1) so
 * training sees the same values as evaluation and inference.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { empty, keep, loadSafetensors, memoryView, saveSafetensors, type Tensor } from "../../engine/index.js";
import { identityFromId } from "../../miniworld/identity.js";
import { renderFaces, type RenderRequest } from "../../miniworld/render.js";
import { styleByName } from "../../miniworld/styles.js";

const CACHE_FORMAT = "metric-network-images/1";
/** Images rendered per renderFaces call (and per progress line). */
const RENDER_CHUNK = 500;

/** A hash of what decides the pixels of a list of renders. */
export function requestsFingerprint(requests: readonly RenderRequest[]): string {
  const hash = createHash("sha256");
  for (const r of requests) hash.update(JSON.stringify([r.id, r.nuisanceSeed ?? null, r.style ?? null, r.size ?? 64, r.worldSeed ?? null]));
  return hash.digest("hex");
}

/**
 * The renders of `requests` (all one size) as a kept uint8 tensor (N, size, size, 3) that the caller disposes.
 * With `cacheFile`, a cache holding exactly these requests is loaded instead of rendering, and a fresh render
 * is saved there (atomically).
 */
export async function renderImageSet(
  requests: readonly RenderRequest[],
  options: { cacheFile?: string; log?: (line: string) => void } = {},
): Promise<Tensor> {
  if (requests.length === 0) throw new Error("renderImageSet: no images requested");
  const size = requests[0]!.size ?? 64;
  if (requests.some((r) => (r.size ?? 64) !== size)) throw new Error("renderImageSet: every image must have the same size");
  const fingerprint = requestsFingerprint(requests);
  const { cacheFile, log } = options;
  if (cacheFile && existsSync(cacheFile)) {
    const cached = loadSafetensors(cacheFile);
    const images = cached.tensors.get("images");
    if (cached.metadata["format"] === CACHE_FORMAT && cached.metadata["fingerprint"] === fingerprint && images) {
      log?.(`loaded ${requests.length} training images from ${cacheFile}`);
      return keep(images);
    }
    for (const tensor of cached.tensors.values()) tensor.dispose();
    log?.(`${cacheFile} holds other images: rendering again`);
  }
  const images = keep(empty([requests.length, size, size, 3], { dtype: "uint8" }));
  try {
    const bytes = new Uint8Array(memoryView(images));
    const perImage = size * size * 3;
    const started = performance.now();
    for (let start = 0; start < requests.length; start += RENDER_CHUNK) {
      const chunk = await renderFaces(requests.slice(start, start + RENDER_CHUNK));
      chunk.forEach((image, i) => bytes.set(image.data, (start + i) * perImage));
      const done = Math.min(requests.length, start + RENDER_CHUNK);
      log?.(`rendered ${done}/${requests.length} training images (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    if (cacheFile) {
      mkdirSync(path.dirname(cacheFile), { recursive: true });
      saveSafetensors(cacheFile, { images }, { format: CACHE_FORMAT, fingerprint });
    }
    return images;
  } catch (error) {
    images.dispose();
    throw error;
  }
}

/** Whether a render of `id` under `style` shows the hair colour its identity has (captions name it then). */
export function hairColourVisible(id: number, style: string | undefined): boolean {
  if (identityFromId(id).hair.style === "bald") return false;
  return style === undefined || !(styleByName(style).hides ?? []).includes("hair colour");
}
