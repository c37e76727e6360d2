// txt2img on the tiny SD1/SD2 pipelines equals diffusers' StableDiffusionPipeline: same seed, same latents,
// same decoded image (≤ 1e-4), same 8-bit pixels (within 1/255), for several schedulers and seeds.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors, memory, tidy, type Tensor } from "../../src/engine/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";

const generated = fileURLToPath(new URL("../../../test/fixtures/generated/", import.meta.url));
interface Case {
  name: string; pipeline: "sd1" | "sd2"; scheduler: string | null; seed: number; prompt: string | string[];
  negative?: string[]; per_prompt?: number; guidance?: number; steps: number;
}
const cases = JSON.parse(readFileSync(`${generated}txt2img/cases.json`, "utf8")) as Case[];
const expected = loadSafetensors(`${generated}txt2img/txt2img.safetensors`).tensors;
const pipelines = new Map<string, StableDiffusionPipeline>();
after(() => {
  for (const pipeline of pipelines.values()) pipeline.dispose();
});

async function pipelineFor(name: string): Promise<StableDiffusionPipeline> {
  let pipeline = pipelines.get(name);
  if (!pipeline) {
    pipeline = await StableDiffusionPipeline.fromPretrained(`${generated}tiny_sd/${name}`);
    pipelines.set(name, pipeline);
  }
  return pipeline;
}

const maxAbs = (a: Tensor, b: Tensor): number => tidy(() => a.float().sub(b.float()).abs().max().item());

for (const c of cases) {
  test(`${c.name}: latents, decoded image and pixels equal diffusers'`, async () => {
    const pipeline = await pipelineFor(c.pipeline);
    const before = memory().tensors;
    const karras = c.scheduler?.endsWith("-karras") ?? false;
    const scheduler = c.scheduler === null ? undefined : c.scheduler.replace(/-karras$/, "");
    const result = pipeline.generate({
      prompt: c.prompt, negativePrompt: c.negative, steps: c.steps, guidanceScale: c.guidance ?? 7.5,
      imagesPerPrompt: c.per_prompt ?? 1, seed: c.seed, scheduler, karrasSigmas: karras,
    });
    // Latents are compared relative to their own scale (Euler's live in sigma space, values up to ~10):
    // under a loaded machine MKL may pick another thread count and reorder float sums (~1e-6 relative).
    const wantedLatents = expected.get(`${c.name}.latents`)!;
    const latentScale = Math.max(1, tidy(() => wantedLatents.abs().max().item()));
    const latentError = maxAbs(result.latents, wantedLatents) / latentScale;
    const imageError = maxAbs(result.images, expected.get(`${c.name}.decoded`)!);
    const pixels = new Uint8Array(result.rgb.flatMap((image) => [...image.data]));
    const wanted = expected.get(`${c.name}.pixels`)!.bytes();
    assert.equal(pixels.length, wanted.length);
    let pixelError = 0;
    for (let i = 0; i < pixels.length; i++) pixelError = Math.max(pixelError, Math.abs(pixels[i]! - wanted[i]!));
    console.log(`${c.name}: max |Δlatents|/scale ${latentError.toExponential(2)}, |Δimage| ${imageError.toExponential(2)}, |Δpixel| ${pixelError}/255`);
    assert.ok(latentError <= 1e-4, `latents differ by ${latentError} of their scale`);
    assert.ok(imageError <= 1e-4, `decoded images differ by ${imageError}`);
    assert.ok(pixelError <= 1, `pixels differ by ${pixelError}/255`);
    result.images.dispose();
    result.latents.dispose();
    assert.equal(memory().tensors, before, "generate() must not leave tensors behind");
  });
}

test("bad generation options are clear errors", async () => {
  const pipeline = await pipelineFor("sd1");
  assert.throws(() => pipeline.generate({ prompt: "x", height: 31 }), /divisible by 2/);
  assert.throws(() => pipeline.generate({ prompt: "x", steps: 0 }), /steps must be a positive integer/);
  assert.throws(() => pipeline.generate({ prompt: ["a", "b"], negativePrompt: ["c"] }), /1 negative prompts for 2 prompts/);
  assert.throws(() => pipeline.generate({ prompt: "x", scheduler: "nonsense" }), /nonsense/);
  await assert.rejects(StableDiffusionPipeline.fromPretrained(`${generated}tiny_sd/sd1/unet`), /not a pipeline/);
});
