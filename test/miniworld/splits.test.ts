// Splits are disjoint fixed id ranges; the shipped sample faces are held-out identities rendered by this code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { renderFace } from "../../src/miniworld/render.js";
import { SPLIT_NAMES, SPLITS, splitIds, splitOf } from "../../src/miniworld/splits.js";
import { loadImage } from "../../src/pipeline/images.js";

const SAMPLES = fileURLToPath(new URL("../../../samples/faces/", import.meta.url));

test("splits are disjoint, contiguous and sized as documented", () => {
  assert.deepEqual(SPLIT_NAMES, ["pretraining", "hypernetwork", "held-out"]);
  assert.deepEqual(SPLIT_NAMES.map((n) => SPLITS[n].count), [50_000, 10_000, 1_000]);
  const seen = new Set<number>();
  for (const name of SPLIT_NAMES) {
    for (const id of splitIds(name)) {
      assert.ok(!seen.has(id), `id ${id} is in two splits`);
      seen.add(id);
      assert.equal(splitOf(id), name);
    }
  }
  assert.equal(seen.size, 61_000);
  assert.deepEqual([splitOf(0), splitOf(49_999), splitOf(50_000), splitOf(59_999), splitOf(60_000), splitOf(60_999), splitOf(61_000)],
    ["pretraining", "pretraining", "hypernetwork", "hypernetwork", "held-out", "held-out", undefined]);
  assert.deepEqual(splitIds("held-out", 3), [60_000, 60_001, 60_002]);
  assert.throws(() => splitIds("held-out", 1001), /has 1000 ids/);
  assert.throws(() => splitOf(-3), /integers ≥ 0/);
});

test("the sample faces are held-out identities, pixel for pixel what renderFace draws", async () => {
  const listed = JSON.parse(readFileSync(path.join(SAMPLES, "captions.json"), "utf8")) as { file: string; id: number; nuisanceSeed: number; split: string }[];
  assert.equal(listed.length, 4);
  for (const sample of listed) {
    assert.equal(splitOf(sample.id), "held-out");
    assert.equal(sample.split, "held-out");
    const file = await loadImage(path.join(SAMPLES, sample.file));
    const drawn = await renderFace(sample.id, { nuisanceSeed: sample.nuisanceSeed });
    assert.deepEqual(file.data, drawn.data, `${sample.file} differs from the renderer's output`);
  }
});
