/**
 * Parts 2 and 3 of bench/gpu/parity.ts (see its docstring): the tiny SD1 pipeline's models in fp32 and under
 * fp16/bf16 autocast, one fp32 UNet backward, and txt2img, each compared with the PyTorch worker's result on
 * the same device and the same inputs.
 */
import path from "node:path";
import {
  autocast, Generator, keep, loadSafetensors, noGrad, randint, randn, saveSafetensors, tidy, type DType, type Tensor,
} from "../../src/engine/index.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";
import { AutoencoderKL } from "../../src/models/vae/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import type { PythonWorker } from "../harness.js";

export type Mode = "fp32" | "fp16" | "bf16";

/**
 * relative = max|Δ| / max(1, max|ref|) (gradients and the loss: max|Δ| / max|ref|, their own scale); a check
 * passes when relative ≤ tolerance and the dtypes agree. The autocast ones are about one fp16 / bf16 ulp at 1
 * and half of what autocast itself changes in these models (vs fp32: fp16 0.9–2.6e-3, bf16 0.8–1.7e-2), so a
 * cast that differs from torch.autocast's shows.
 */
export const TOLERANCES = {
  models: { fp32: 1e-4, fp16: 1e-3, bf16: 8e-3 } as Record<Mode, number>,
  txt2imgLatents: { fp32: 1e-4, fp16: 5e-3 } as Record<string, number>,
  /** max |Δ| of the uint8 pixels, in 1/255. */
  txt2imgPixels: { fp32: 1, fp16: 2 } as Record<string, number>,
};

export interface Check {
  part: string;
  name: string;
  mode: string;
  maxAbsDiff: number | null;
  maxAbsRef: number | null;
  relative: number | null;
  tolerance: number;
  pass: boolean;
  dtypes?: { ours: string; torch: string };
  /** How far PyTorch's own autocast output is from its fp32 output (same relative measure): the cast's effect. */
  autocastEffect?: number;
  /** "own": relative to max|ref| alone (gradients, loss). */
  scale?: "own";
  error?: string;
  skipped?: string;
}

export interface Context {
  device: string;
  deviceType: "cuda" | "cpu";
  worker: PythonWorker;
  tmp: string;
  tiny: string;
}

type Answer = { error?: string; traceback?: string } & Record<string, unknown>;

/** Asks the worker; its error (a Python exception) becomes a thrown Error. */
export async function ask<T extends Answer>(worker: PythonWorker, message: object): Promise<T> {
  const answer = await worker.ask<T>(message);
  if (answer.error) throw new Error(`PyTorch: ${answer.error}`);
  return answer;
}

/**
 * max|Δ|, max|ref| and relative = max|Δ| / max(1, max|ref|) of two tensors compared in float32 on the CPU;
 * with `ownScale`, relative = max|Δ| / max|ref| (for gradients, whose scale is far below 1).
 */
export function compare(ours: Tensor, ref: Tensor, ownScale = false): { maxAbsDiff: number; maxAbsRef: number; relative: number } {
  if (ours.shape.join() !== ref.shape.join()) throw new Error(`shape [${ours.shape.join(", ")}], PyTorch's is [${ref.shape.join(", ")}]`);
  return tidy(() => {
    const a = ours.to({ dtype: "float32", device: "cpu" });
    const b = ref.to({ dtype: "float32", device: "cpu" });
    const maxAbsDiff = a.sub(b).abs().max().item();
    const maxAbsRef = b.abs().max().item();
    return { maxAbsDiff, maxAbsRef, relative: maxAbsDiff / (ownScale ? maxAbsRef : Math.max(1, maxAbsRef)) };
  });
}

/** A check from a comparison: NaN anywhere fails it (NaN ≤ tol is false). */
function checked(part: string, name: string, mode: string, tolerance: number, stat: ReturnType<typeof compare>, extra: Partial<Check> = {}): Check {
  const pass = stat.relative <= tolerance && (!extra.dtypes || extra.dtypes.ours === extra.dtypes.torch);
  return { part, name, mode, ...stat, tolerance, pass, ...extra };
}

/** A check that could not be made: the error is recorded, the check fails. */
export function failed(part: string, name: string, mode: string, tolerance: number, error: unknown): Check {
  const message = error instanceof Error ? error.message : String(error);
  return { part, name, mode, maxAbsDiff: null, maxAbsRef: null, relative: null, tolerance, pass: false, error: message };
}

const UNET_PARAMS = [
  "conv_in.weight",
  "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
  "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
  "up_blocks.1.resnets.0.conv1.weight",
  "conv_out.weight",
];
const TIMESTEP = 500;

/** Part 2: UNet, VAE encode/decode and CLIP text model forward per mode, and one fp32 UNet backward. */
export async function modelChecks(ctx: Context, modes: Mode[], record: (check: Check) => void): Promise<void> {
  const placement = { device: ctx.device };
  const unet = UNet2DConditionModel.fromPretrained(path.join(ctx.tiny, "unet"), placement);
  const vae = AutoencoderKL.fromPretrained(path.join(ctx.tiny, "vae"), placement);
  const clip = CLIPTextModel.fromPretrained(path.join(ctx.tiny, "text_encoder"), placement);
  // The inputs: drawn on the CPU with a seeded generator, saved for the worker, moved to the device here.
  const g = new Generator("cpu", 0);
  const inputs = tidy(() => new Map<string, Tensor>([
    ["unet.sample", keep(randn([2, 4, 16, 16], { generator: g }))],
    ["unet.text", keep(randn([2, 77, clip.config.hidden_size], { generator: g }))],
    ["vae.image", keep(randn([1, 3, 32, 32], { generator: g }).tanh())],
    ["vae.latents", keep(randn([1, 4, 8, 8], { generator: g }))],
    ["clip.ids", keep(randint(0, clip.config.vocab_size, [2, 77], { generator: g }))],
  ]));
  const inputsFile = path.join(ctx.tmp, "model-inputs.safetensors");
  saveSafetensors(inputsFile, inputs);
  const x = new Map([...inputs].map(([k, v]) => [k, v.to(ctx.device)]));
  const get = (name: string): Tensor => x.get(name)!;
  const forwards: Record<string, () => Tensor> = {
    unet: () => unet.forward(get("unet.sample"), TIMESTEP, get("unet.text")),
    vae_encode: () => vae.encode(get("vae.image")).mean,
    vae_decode: () => vae.decode(get("vae.latents")),
    clip: () => clip.forward(get("clip.ids")).lastHiddenState,
  };
  const amp = <T>(mode: Mode, fn: () => T): T => (mode === "fp32" ? fn() : autocast(ctx.deviceType, mode === "fp16" ? "float16" : "bfloat16", fn));
  try {
    for (const mode of modes) {
      for (const [name, forward] of Object.entries(forwards)) {
        const tolerance = TOLERANCES.models[mode];
        try {
          const out = path.join(ctx.tmp, `${name}-${mode}.safetensors`);
          const answer = await ask<{ dtypes: Record<string, string>; autocast_effect?: number }>(ctx.worker, { cmd: "model", model: name, mode, inputs: inputsFile, out, timestep: TIMESTEP });
          const ref = loadSafetensors(out).tensors;
          const check = tidy(() => {
            const ours = amp(mode, () => noGrad(() => tidy(forward)));
            const dtypes = { ours: ours.dtype, torch: answer.dtypes.output ?? "?" };
            return checked("models", name, mode, tolerance, compare(ours, ref.get("output")!), { dtypes, ...(answer.autocast_effect === undefined ? {} : { autocastEffect: answer.autocast_effect }) });
          });
          for (const t of ref.values()) t.dispose();
          record(check);
        } catch (error) {
          record(failed("models", name, mode, tolerance, error));
        }
      }
    }
    await unetBackward(ctx, unet, get, inputsFile, record);
  } finally {
    for (const t of [...inputs.values(), ...x.values()]) t.dispose();
    unet.dispose();
    vae.dispose();
    clip.dispose();
  }
}

/** fp32: loss = unet(...).square().mean(), backpropagated with unet.backward; the loss and a few gradients. */
async function unetBackward(ctx: Context, unet: UNet2DConditionModel, get: (name: string) => Tensor, inputsFile: string, record: (check: Check) => void): Promise<void> {
  const tolerance = TOLERANCES.models.fp32;
  try {
    const out = path.join(ctx.tmp, "unet_backward-fp32.safetensors");
    await ask(ctx.worker, { cmd: "model", model: "unet_backward", mode: "fp32", inputs: inputsFile, out, timestep: TIMESTEP, params: UNET_PARAMS });
    const ref = loadSafetensors(out).tensors;
    const params = new Map(unet.namedParameters());
    unet.zeroGrad();
    const loss = tidy(() => {
      const l = unet.forward(get("unet.sample"), TIMESTEP, get("unet.text")).square().mean();
      unet.backward(l);
      return l.reshape(1);
    });
    record(checked("models", "unet_backward.loss", "fp32", tolerance, compare(loss, ref.get("loss")!, true), { scale: "own" }));
    loss.dispose();
    for (const name of UNET_PARAMS) {
      try {
        const param = params.get(name);
        if (!param) throw new Error(`the UNet has no parameter ${name}`);
        const grad = param.grad;
        if (!grad) throw new Error(`${name} got no gradient`);
        record(checked("models", `unet_backward.grad.${name}`, "fp32", tolerance, compare(grad, ref.get(name)!, true), { scale: "own" }));
        grad.dispose();
      } catch (error) {
        record(failed("models", `unet_backward.grad.${name}`, "fp32", tolerance, error));
      }
    }
    unet.zeroGrad();
    for (const t of ref.values()) t.dispose();
  } catch (error) {
    record(failed("models", "unet_backward", "fp32", tolerance, error));
  }
}

export const TXT2IMG = { prompt: "a photo of a sks face", seed: 0, steps: 10, guidance: 7.5 };

/** Part 3: txt2img on the tiny pipeline in `dtype`, final latents and uint8 pixels against diffusers'. */
export async function txt2imgChecks(ctx: Context, dtype: DType, record: (check: Check) => void): Promise<void> {
  const mode = dtype === "float32" ? "fp32" : "fp16";
  const latentTolerance = TOLERANCES.txt2imgLatents[mode]!;
  const pixelTolerance = TOLERANCES.txt2imgPixels[mode]!;
  try {
    const out = path.join(ctx.tmp, `txt2img-${dtype}.safetensors`);
    const answer = await ask<{ latents_dtype: string }>(ctx.worker, { cmd: "txt2img", dtype, out, ...TXT2IMG });
    const ref = loadSafetensors(out).tensors;
    const pipeline = await StableDiffusionPipeline.fromPretrained(ctx.tiny, { device: ctx.device, dtype });
    try {
      const result = pipeline.generate({ prompt: TXT2IMG.prompt, steps: TXT2IMG.steps, guidanceScale: TXT2IMG.guidance, seed: TXT2IMG.seed });
      const dtypes = { ours: result.latents.dtype, torch: answer.latents_dtype };
      record(checked("txt2img", "latents", mode, latentTolerance, compare(result.latents, ref.get("latents")!), { dtypes }));
      const pixels = new Uint8Array(result.rgb.flatMap((image) => [...image.data]));
      const wanted = ref.get("pixels")!.bytes();
      if (pixels.length !== wanted.length) throw new Error(`${pixels.length} pixel bytes, diffusers gave ${wanted.length}`);
      let worst = 0;
      for (let i = 0; i < pixels.length; i++) worst = Math.max(worst, Math.abs(pixels[i]! - wanted[i]!));
      record({
        part: "txt2img", name: "pixels (max |Δ| in 1/255)", mode, maxAbsDiff: worst, maxAbsRef: 255, relative: worst / 255,
        tolerance: pixelTolerance / 255, pass: worst <= pixelTolerance,
      });
      result.images.dispose();
      result.latents.dispose();
    } finally {
      pipeline.dispose();
      for (const t of ref.values()) t.dispose();
    }
  } catch (error) {
    record(failed("txt2img", "latents+pixels", mode, latentTolerance, error));
  }
}
