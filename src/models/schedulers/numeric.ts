/**
 * The numerics schedulers share, written to follow diffusers 0.42.1 operation for operation (test/models/
 * schedulers.test.ts asserts ≤ 1e-5 relative on every tensor and reports how many are exactly equal).
 *
 * diffusers builds its schedules partly with torch (float32 tensors: betas, alphas_cumprod, sigmas) and partly
 * with NumPy (float64 arrays: timestep spacing, interpolation, Karras sigmas). The torch parts here use the
 * engine's ATen operators in the same order; the NumPy parts are JS doubles computed with the same formulas
 * NumPy uses internally (linspace, float arange, round-half-to-even, interp), then cast to float32 where
 * diffusers casts.
 */
import { Generator, keep, linspace, op, randn, Tensor, tensor, tidy, type DType, type Device } from "../../engine/index.js";
import type { BetaSchedule } from "./config.js";

// ---- NumPy, in doubles ----------------------------------------------------------------------------------

/** numpy.linspace(start, stop, num) (float64): `i * step + start`, the last element set to `stop`. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const delta = stop - start;
  const out: number[] = [];
  if (div > 0) {
    const step = delta / div;
    for (let i = 0; i < num; i++) out.push(step === 0 ? (i / div) * delta + start : i * step + start);
    out[num - 1] = stop;
  } else {
    for (let i = 0; i < num; i++) out.push(i * delta + start);
  }
  return out;
}

/**
 * numpy.arange(start, stop, step) for a float step: length ceil((stop - start) / step); element 1 is
 * `start + step` and later ones `start + i * delta` with delta = (start + step) - start, as NumPy's fill does.
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.ceil((stop - start) / step);
  const out: number[] = [];
  if (!(length > 0)) return out;
  out.push(start);
  if (length === 1) return out;
  const next = start + step;
  out.push(next);
  const delta = next - start;
  for (let i = 2; i < length; i++) out.push(start + i * delta);
  return out;
}

/** numpy.round / rint: round half to even. */
export function rint(x: number): number {
  if (!Number.isFinite(x)) return x;
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** numpy.interp(x, arange(len(fp)), fp): linear interpolation on the integer grid, in doubles. */
export function interpOnIndex(xs: readonly number[], fp: ArrayLike<number>): number[] {
  const n = fp.length;
  const at = (i: number): number => fp[i]!;
  return xs.map((x) => {
    if (Number.isNaN(x)) return x;
    if (x > n - 1) return at(n - 1);
    if (x < 0) return at(0);
    const j = Math.floor(x);
    if (j === n - 1 || j === x) return at(j);
    const slope = (at(j + 1) - at(j)) / (j + 1 - j);
    let value = slope * (x - j) + at(j);
    if (Number.isNaN(value)) {
      value = slope * (x - (j + 1)) + at(j + 1);
      if (Number.isNaN(value) && at(j) === at(j + 1)) value = at(j);
    }
    return value;
  });
}

// ---- NumPy's float32 log -----------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number): number => {
  u32[0] = bits >>> 0;
  return f32[0]!;
};
const toBits = (x: number): number => {
  f32[0] = x;
  return u32[0]!;
};

/** Single-precision fused multiply-add a * b + c (one rounding), for float32 a, b, c. */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 bits fit in a double
  const s = p + c;
  const v = s - p;
  const err = (p - (s - v)) + (c - v); // s + err is a * b + c exactly
  const r = Math.fround(s);
  if (err === 0 || r === s) return r;
  // s may sit exactly between two floats, where rounding s instead of the exact sum goes the wrong way.
  const lo = r < s ? r : fromBits(r > 0 ? toBits(r) - 1 : toBits(r) + 1);
  const hi = r > s ? r : fromBits(r > 0 ? toBits(r) + 1 : toBits(r) - 1);
  if (s - lo === hi - s) return err > 0 ? hi : lo;
  return r;
}

// NPY_COEFF_P*_LOGf, NPY_COEFF_Q*_LOGf, NPY_LOGE2f and NPY_SQRT1_2f of npy_simd_data.h / npy_math.h, as float32 bits.
const LOG_P = [0x00000000, 0x3f800000, 0x4007361c, 0x3fbd70a9, 0x3ec30333, 0x3cd42bcd].map(fromBits);
const LOG_Q = [0x3f800000, 0x4027361c, 0x401cfe0d, 0x3f7c8ae4, 0x3e1e5bf3, 0x3bc083df].map(fromBits);
const LOGE2 = fromBits(0x3f317218);
const SQRT1_2 = fromBits(0x3f3504f3);

/**
 * numpy.log of a float32 value as NumPy computes it on x86-64 with AVX2+FMA3 or AVX-512 (its SIMD kernel in
 * loops_exponent_log.dispatch.c.src: a P5/Q5 rational approximation with fused multiply-adds, up to ~4 ulp
 * from the true logarithm). diffusers takes float32 logs of its sigmas with NumPy, so Karras timesteps depend
 * on these exact bits. Positive normal inputs; other inputs use the correctly rounded logarithm.
 */
export function logFloat32(x: number): number {
  const v = Math.fround(x);
  if (!(v >= 1.1754943508222875e-38) || v === Infinity) return Math.fround(Math.log(v));
  const bits = toBits(v);
  let exponent = ((bits >>> 23) & 0xff) - 0x7e;
  let m = fromBits((bits & 0x7fffff) | (126 << 23)); // in [0.5, 1)
  if (m <= SQRT1_2) {
    m = m + m;
    exponent -= 1;
  }
  const y = Math.fround(m - 1);
  let num = fmaf(LOG_P[5]!, y, LOG_P[4]!);
  let den = fmaf(LOG_Q[5]!, y, LOG_Q[4]!);
  for (let i = 3; i >= 0; i--) {
    num = fmaf(num, y, LOG_P[i]!);
    den = fmaf(den, y, LOG_Q[i]!);
  }
  return fmaf(exponent, LOGE2, Math.fround(num / den));
}

/**
 * diffusers' `_sigma_to_t`: the fractional training timestep whose sigma is `sigma`, by linear interpolation
 * in log-sigma. `logSigmas` holds float32 values (NumPy float32 arithmetic where diffusers has it).
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const n = logSigmas.length;
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // cumsum(dists >= 0).argmax(): the first index where the running count reaches its maximum.
  let count = 0;
  let best = -1;
  let lowIdx = 0;
  for (let i = 0; i < n; i++) {
    if (logSigma - logSigmas[i]! >= 0) count++;
    if (count > best) {
      best = count;
      lowIdx = i;
    }
  }
  lowIdx = Math.min(lowIdx, n - 2);
  const highIdx = lowIdx + 1;
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[highIdx]!;
  let w = (low - logSigma) / Math.fround(low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lowIdx + w * highIdx;
}

/** The noise levels of Karras et al. (2022), eq. 5 with rho = 7, from sigmaMax down to sigmaMin (doubles). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, num: number): number[] {
  const rho = 7.0;
  const minInvRho = Math.pow(sigmaMin, 1 / rho);
  const maxInvRho = Math.pow(sigmaMax, 1 / rho);
  return npLinspace(0, 1, num).map((ramp) => Math.pow(maxInvRho + ramp * (minInvRho - maxInvRho), rho));
}

// ---- torch, through the engine ------------------------------------------------------------------------------

const cumprodOp = op("aten::cumprod");

/** torch.cumprod(x, dim). */
export function cumprod(x: Tensor, dim = 0): Tensor {
  return new Tensor(cumprodOp.call(x.handle, dim, null) as number);
}

function betasForAlphaBar(num: number, maxBeta = 0.999): number[] {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const betas: number[] = [];
  for (let i = 0; i < num; i++) {
    const t1 = i / num;
    const t2 = (i + 1) / num;
    betas.push(Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta));
  }
  return betas;
}

/** Zero terminal SNR rescaling (Lin et al. 2024, algorithm 1), as diffusers' rescale_zero_terminal_snr. */
function rescaleZeroTerminalSnr(betas: Tensor): Tensor {
  return tidy(() => {
    const alphas = betas.rsub(1);
    const alphasCumprod = cumprod(alphas, 0);
    const alphasBarSqrt = alphasCumprod.sqrt();
    const first = alphasBarSqrt.select(0, 0).clone();
    const last = alphasBarSqrt.select(0, -1).clone();
    alphasBarSqrt.sub_(last);
    alphasBarSqrt.mul_(first.div(first.sub(last)));
    const alphasBar = alphasBarSqrt.pow(2);
    const ratios = alphasBar.slice(0, 1).div(alphasBar.slice(0, 0, -1));
    const all = catFirst(alphasBar.slice(0, 0, 1), ratios);
    return all.rsub(1);
  });
}

const catOp = op("aten::cat");
function catFirst(a: Tensor, b: Tensor): Tensor {
  return new Tensor(catOp.call([a.handle, b.handle], 0) as number);
}

export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: readonly number[] | null;
  rescale_betas_zero_snr?: boolean;
}

/** The training noise schedule: betas (float32, CPU) as every diffusers scheduler's constructor builds it. */
export function makeBetas(config: BetaConfig): Tensor {
  const n = config.num_train_timesteps;
  let betas: Tensor;
  if (config.trained_betas !== null) {
    betas = tensor(Float64Array.from(config.trained_betas), { dtype: "float32" });
  } else if (config.beta_schedule === "linear") {
    betas = linspace(config.beta_start, config.beta_end, n, { dtype: "float32" });
  } else if (config.beta_schedule === "scaled_linear") {
    betas = tidy(() => linspace(config.beta_start ** 0.5, config.beta_end ** 0.5, n, { dtype: "float32" }).pow(2));
  } else {
    betas = tensor(Float64Array.from(betasForAlphaBar(n)), { dtype: "float32" });
  }
  if (config.rescale_betas_zero_snr) {
    const rescaled = rescaleZeroTerminalSnr(betas);
    betas.dispose();
    betas = rescaled;
  }
  return betas;
}

/** Scheduler-owned float32 CPU tensors: betas, alphas = 1 - betas and alphas_cumprod. */
export function trainingSchedule(config: BetaConfig): { betas: Tensor; alphas: Tensor; alphasCumprod: Tensor } {
  return tidy(() => {
    const betas = keep(makeBetas(config));
    const alphas = keep(betas.rsub(1.0));
    const alphasCumprod = keep(cumprod(alphas, 0));
    return { betas, alphas, alphasCumprod };
  });
}

/** ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, in torch float32, read out. */
export function trainingSigmas(alphasCumprod: Tensor): Float32Array {
  return tidy(() => alphasCumprod.rsub(1).div(alphasCumprod).pow(0.5).data() as Float32Array);
}

/** The elements of a tensor on any device as JS numbers (int64 included). */
export function valuesOf(t: Tensor): number[] {
  return tidy(() => Array.from(t.to("cpu").data() as ArrayLike<number | bigint>, Number));
}

/** A float32 CPU tensor with these values (each rounded to float32, as `.astype(np.float32)`). */
export function float32Tensor(values: readonly number[], device?: Device): Tensor {
  const t = tensor(Float32Array.from(values));
  if (device === undefined || device === "cpu") return t;
  const moved = t.to(device);
  t.dispose();
  return moved;
}

/** An int64 tensor with these values (truncated toward zero, as `.astype(np.int64)`). */
export function int64Tensor(values: readonly number[], device?: Device): Tensor {
  const t = tensor(BigInt64Array.from(values, (v) => BigInt(Math.trunc(v))));
  if (device === undefined || device === "cpu") return t;
  const moved = t.to(device);
  t.dispose();
  return moved;
}

// ---- randomness ----------------------------------------------------------------------------------------------

export interface RandnOptions {
  generator?: Generator | readonly Generator[];
  device?: Device;
  dtype?: DType;
}

const deviceType = (device: Device): string => device.split(":")[0]!;

/**
 * diffusers' `randn_tensor`: standard normal noise drawn with the generator on its own device (a CPU
 * generator draws on the CPU and the result moves to `device`), one generator per batch item for a list.
 * With the same seeds the numbers equal diffusers' with torch.Generator("cpu").manual_seed(seed).
 */
export function randnTensor(shape: readonly number[], options: RandnOptions = {}): Tensor {
  const device = options.device ?? "cpu";
  const generators = options.generator;
  return tidy(() => {
    if (Array.isArray(generators) && generators.length !== 1) {
      if (generators.length !== shape[0]) {
        throw new Error(`randnTensor: ${generators.length} generators for a batch of ${shape[0]}`);
      }
      const parts = generators.map((g: Generator) => draw([1, ...shape.slice(1)], g, options.dtype, device));
      return new Tensor(catOp.call(parts.map((p: Tensor) => p.handle), 0) as number).to(device);
    }
    const generator = Array.isArray(generators) ? generators[0] : (generators as Generator | undefined);
    return draw(shape, generator, options.dtype, device).to(device);
  });
}

function draw(shape: readonly number[], generator: Generator | undefined, dtype: DType | undefined, device: Device): Tensor {
  let randDevice = device;
  if (generator && deviceType(generator.device) !== deviceType(device)) {
    if (deviceType(generator.device) !== "cpu") {
      throw new Error(`Cannot generate a ${device} tensor from a generator of type ${generator.device}.`);
    }
    randDevice = "cpu";
  }
  return randn(shape, { generator, dtype, device: randDevice });
}
