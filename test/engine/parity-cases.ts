/**
 * The operator parity table: one line per case, compared against PyTorch by test/engine/ops-parity.test.ts.
 *
 * A case is `c(name, inputs, torchExpression, run, options?)`:
 *  - inputs: how the oracle draws each input (shape, kind of values, dtype, whether it requires grad);
 *  - torchExpression: Python evaluated by test/oracle/fixtures_ops.py with `torch`, `F`
 *    (torch.nn.functional), `math`, `np` and `x` (the list of inputs); it returns a tensor or a
 *    tuple/list of tensors;
 *  - run: the same computation in TypeScript on the same inputs;
 *  - options: `grad: false` to skip the gradient check, `seed` to call manual_seed(seed) right before both
 *    sides run (random operators), `tol` / `gradTol` with a `why` to loosen the tolerance (listed in
 *    docs/engine-parity.md).
 * Gradients of sum(output · g) w.r.t. every input that requires grad are compared for every output that
 * requires grad, g being a fixed random tensor per output. Adding an operator means adding one line here,
 * then `.venv/bin/python test/oracle/generate.py ops` (npm test does it).
 *
 * The random-number table at the end works the same way for test/engine/random-parity.test.ts: for each
 * seed both sides call manual_seed(seed), make a generator `g` seeded with seed + 1, evaluate, and the
 * numbers must be bitwise equal.
 *
 * Run directly (`node dist/test/engine/parity-cases.js`) this module prints both tables as JSON (without the
 * TypeScript functions) for the oracle.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  arange, attentionByMath, baddbmm, bmm, cat, conv2d, convTranspose2d, crossEntropy, dropout, einsum,
  embedding, empty, eye, full, Generator, gelu, getRngState, groupNorm, interpolate, layerNorm, linalgSolve, linear,
  linspace, logSoftmax, matmul, mm, mseLoss, multinomial, normal, ones, onesLike, pad, rand, randint, randLike, randn, randnLike,
  scaledDotProductAttention, silu, softmax, splitSizes, stack, tensor, where, zeros, zerosLike,
  type DType, type Tensor,
} from "../../src/engine/index.js";
import { loadSafetensors } from "../../src/engine/safetensors/index.js";

// ---- input specifications ----------------------------------------------------------------------------

export interface InputSpec {
  shape: number[];
  dtype: DType;
  /** normal: standard normal; uniform: in [low, high); int: integers in [low, high); mask: booleans, P(true) = p. */
  kind: "normal" | "uniform" | "int" | "mask";
  low?: number;
  high?: number;
  p?: number;
  grad: boolean;
}

/** Standard normal float32 values that require grad. */
const t = (...shape: number[]): InputSpec => ({ shape, dtype: "float32", kind: "normal", grad: true });
/** Uniform float32 values in [low, high) that require grad. */
const u = (low: number, high: number, ...shape: number[]): InputSpec => ({ shape, dtype: "float32", kind: "uniform", low, high, grad: true });
/** Positive float32 values in [0.5, 2): for log, sqrt, division, ... */
const pos = (...shape: number[]): InputSpec => u(0.5, 2, ...shape);
/** int64 integers in [low, high) (indices, targets). */
const ints = (low: number, high: number, ...shape: number[]): InputSpec => ({ shape, dtype: "int64", kind: "int", low, high, grad: false });
/** A boolean mask, true with probability p. */
const mask = (...shape: number[]): InputSpec => ({ shape, dtype: "bool", kind: "mask", p: 0.5, grad: false });
/** The same input without requires_grad. */
const ng = (spec: InputSpec): InputSpec => ({ ...spec, grad: false });
/** The same input in another floating dtype. */
const as = (dtype: DType, spec: InputSpec): InputSpec => ({ ...spec, dtype });

// ---- cases -------------------------------------------------------------------------------------------

/** The inputs as the TypeScript side sees them (a tuple type, so `x[2]` needs no `!`). */
export type Inputs = [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
export type Outputs = Tensor | Tensor[];

export interface CaseOptions {
  /** Compare gradients (default: whenever an output requires grad). */
  grad?: boolean;
  /** manual_seed(seed) right before evaluating, on both sides. */
  seed?: number;
  /** Tolerance for floating outputs, replacing the per-dtype default; needs `why`. */
  tol?: number;
  /** Tolerance for gradients (default: tol, or the per-dtype default); needs `why`. */
  gradTol?: number;
  why?: string;
}

/** The part of a case the oracle sees (JSON). */
export interface CaseSpec {
  name: string;
  inputs: InputSpec[];
  torch: string;
  grad: boolean;
  seed: number | null;
  tol: number | null;
  gradTol: number | null;
  why: string | null;
}

export interface ParityCase extends CaseSpec {
  run: (x: Inputs) => Outputs;
}

/**
 * Default tolerances: |actual - expected| <= tol * max(1, |expected|), per output dtype. Integer and boolean
 * outputs must be equal; NaN must meet NaN and infinities the same infinity.
 */
export const defaultTolerance: Partial<Record<DType, number>> = { float32: 1e-5, float64: 1e-12, float16: 1e-3, bfloat16: 8e-3 };

export const cases: ParityCase[] = [];

function c(name: string, inputs: InputSpec[], torch: string, run: (x: Inputs) => Outputs, options: CaseOptions = {}): void {
  if (cases.some((k) => k.name === name)) throw new Error(`parity case '${name}' is defined twice`);
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`parity case name '${name}' must be [A-Za-z0-9_]+`);
  if ((options.tol !== undefined || options.gradTol !== undefined) && !options.why) {
    throw new Error(`parity case '${name}' loosens the tolerance without saying why`);
  }
  cases.push({
    name, inputs, torch, run, grad: options.grad ?? true, seed: options.seed ?? null, tol: options.tol ?? null,
    gradTol: options.gradTol ?? null, why: options.why ?? null,
  });
}

/** [values, indices] of max/min/topk/sort results. */
const vi = (r: { values: Tensor; indices: Tensor }): Tensor[] => [r.values, r.indices];

const ATTN = [t(2, 2, 5, 8), t(2, 2, 6, 8), t(2, 2, 6, 8)];
const ATTN_SQ = [t(2, 2, 5, 8), t(2, 2, 5, 8), t(2, 2, 5, 8)];
/** A bool mask with column 0 always true, so that no query row is fully masked. */
const ATTN_BOOL_PY = "torch.cat([torch.ones(5, 1, dtype=torch.bool), x[3]], 1)";
const attnBool = (m: Tensor): Tensor => cat([ones([5, 1], { dtype: "bool", device: m.device }), m], 1);

// arithmetic with broadcasting
c("add", [t(4, 5), t(5)], "x[0] + x[1]", (x) => x[0].add(x[1]));
c("add_alpha", [t(4, 5), t(4, 1)], "torch.add(x[0], x[1], alpha=2.5)", (x) => x[0].add(x[1], 2.5));
c("add_scalar", [t(4, 5)], "x[0] + 1.5", (x) => x[0].add(1.5));
c("add_scalar_int", [t(4, 5)], "x[0] + 2", (x) => x[0].add(2));
c("add_int_tensors", [ints(-5, 5, 3, 4), ints(-5, 5, 4)], "x[0] + x[1]", (x) => x[0].add(x[1]));
c("sub", [t(3, 1, 5), t(4, 5)], "x[0] - x[1]", (x) => x[0].sub(x[1]));
c("sub_alpha", [t(4, 5), t(4, 5)], "torch.sub(x[0], x[1], alpha=0.5)", (x) => x[0].sub(x[1], 0.5));
c("sub_scalar", [t(4, 5)], "x[0] - 0.75", (x) => x[0].sub(0.75));
c("rsub_scalar", [t(4, 5)], "3.0 - x[0]", (x) => x[0].rsub(3));
c("mul", [t(2, 3, 4), t(3, 1)], "x[0] * x[1]", (x) => x[0].mul(x[1]));
c("mul_scalar", [t(4, 5)], "x[0] * -1.25", (x) => x[0].mul(-1.25));
c("div", [t(4, 5), pos(5)], "x[0] / x[1]", (x) => x[0].div(x[1]));
c("div_scalar", [t(4, 5)], "x[0] / 3.0", (x) => x[0].div(3));
c("div_trunc", [u(-6, 6, 4, 5), pos(4, 5)], "torch.div(x[0], x[1], rounding_mode='trunc')", (x) => x[0].div(x[1], "trunc"));
c("div_floor", [u(-6, 6, 4, 5), pos(4, 5)], "torch.div(x[0], x[1], rounding_mode='floor')", (x) => x[0].div(x[1], "floor"));
c("div_scalar_trunc", [u(-6, 6, 4, 5)], "torch.div(x[0], 1.5, rounding_mode='trunc')", (x) => x[0].div(1.5, "trunc"));
c("div_scalar_floor", [u(-6, 6, 4, 5)], "torch.div(x[0], 1.5, rounding_mode='floor')", (x) => x[0].div(1.5, "floor"));
c("div_int_floor", [ints(-9, 9, 4, 5), ints(1, 4, 5)], "torch.div(x[0], x[1], rounding_mode='floor')", (x) => x[0].div(x[1], "floor"));
c("pow_scalar_2", [t(4, 5)], "x[0] ** 2", (x) => x[0].pow(2));
c("pow_scalar_half", [pos(4, 5)], "x[0] ** 0.5", (x) => x[0].pow(0.5));
c("pow_scalar_neg", [pos(4, 5)], "x[0] ** -1.5", (x) => x[0].pow(-1.5));
c("pow_tensor", [pos(4, 5), t(5)], "x[0] ** x[1]", (x) => x[0].pow(x[1]));
c("remainder", [u(-5, 5, 4, 5), pos(4, 5)], "torch.remainder(x[0], x[1])", (x) => x[0].remainder(x[1]));
c("remainder_scalar", [u(-5, 5, 4, 5)], "torch.remainder(x[0], 1.5)", (x) => x[0].remainder(1.5));
c("neg", [t(4, 5)], "-x[0]", (x) => x[0].neg());
c("reciprocal", [pos(4, 5)], "x[0].reciprocal()", (x) => x[0].reciprocal());
c("square", [t(4, 5)], "x[0].square()", (x) => x[0].square());
c("lerp_scalar", [t(4, 5), t(4, 5)], "torch.lerp(x[0], x[1], 0.3)", (x) => x[0].lerp(x[1], 0.3));
c("lerp_tensor", [t(4, 5), t(4, 5), u(0, 1, 5)], "torch.lerp(x[0], x[1], x[2])", (x) => x[0].lerp(x[1], x[2]));

// comparison and selection
c("eq", [ints(0, 3, 4, 5), ints(0, 3, 5)], "x[0] == x[1]", (x) => x[0].eq(x[1]));
c("ne", [ints(0, 3, 4, 5), ints(0, 3, 4, 5)], "x[0] != x[1]", (x) => x[0].ne(x[1]));
c("eq_scalar", [ints(0, 3, 4, 5)], "x[0] == 1", (x) => x[0].eq(1));
c("ne_scalar", [ints(0, 3, 4, 5)], "x[0] != 2", (x) => x[0].ne(2));
c("lt", [t(4, 5), t(4, 1)], "x[0] < x[1]", (x) => x[0].lt(x[1]));
c("le", [ints(0, 3, 4, 5), ints(0, 3, 5)], "x[0] <= x[1]", (x) => x[0].le(x[1]));
c("gt", [t(4, 5), t(5)], "x[0] > x[1]", (x) => x[0].gt(x[1]));
c("ge", [ints(0, 3, 4, 5), ints(0, 3, 4, 5)], "x[0] >= x[1]", (x) => x[0].ge(x[1]));
c("lt_scalar", [t(4, 5)], "x[0] < 0.25", (x) => x[0].lt(0.25));
c("le_scalar", [t(4, 5)], "x[0] <= -0.1", (x) => x[0].le(-0.1));
c("gt_scalar", [t(4, 5)], "x[0] > 0", (x) => x[0].gt(0));
c("ge_scalar", [t(4, 5)], "x[0] >= 0.5", (x) => x[0].ge(0.5));
c("logical_ops", [mask(4, 5), mask(5)], "[x[0].logical_not(), x[0].logical_and(x[1]), x[0].logical_or(x[1])]", (x) => [x[0].logicalNot(), x[0].logicalAnd(x[1]), x[0].logicalOr(x[1])]);
c("any_all", [mask(4, 5)], "[x[0].any(), x[0].all(), (x[0] | True).all()]", (x) => [x[0].any(), x[0].all(), x[0].logicalOr(ones([1], { dtype: "bool", device: x[0].device })).all()]);
c("isfinite", [t(4, 5), mask(4, 5)], "x[0].masked_fill(x[1], float('inf')).isfinite()", (x) => x[0].maskedFill(x[1], Infinity).isFinite());
c("where", [mask(4, 5), t(4, 5), t(5)], "torch.where(x[0], x[1], x[2])", (x) => where(x[0], x[1], x[2]));
c("where_scalar_other", [mask(4, 5), t(4, 5)], "torch.where(x[0], x[1], -2.5)", (x) => where(x[0], x[1], -2.5));
c("where_scalar_self", [mask(4, 5), t(4, 5)], "torch.where(x[0], 0.5, x[1])", (x) => where(x[0], 0.5, x[1]));
c("where_scalars", [mask(4, 5)], "torch.where(x[0], 1.5, -1.5)", (x) => where(x[0], 1.5, -1.5));
c("clamp", [t(4, 5)], "x[0].clamp(-0.5, 0.75)", (x) => x[0].clamp(-0.5, 0.75));
c("clamp_min", [t(4, 5)], "x[0].clamp(min=0)", (x) => x[0].clamp(0));
c("clamp_max", [t(4, 5)], "x[0].clamp(max=0.3)", (x) => x[0].clamp(null, 0.3));
c("masked_fill", [t(4, 5), mask(4, 5)], "x[0].masked_fill(x[1], -1.5)", (x) => x[0].maskedFill(x[1], -1.5));
c("masked_fill_broadcast", [t(3, 4, 5), mask(5)], "x[0].masked_fill(x[1], 2)", (x) => x[0].maskedFill(x[1], 2));
c("masked_fill_neg_inf", [t(4, 5), mask(4, 5)], "x[0].masked_fill(x[1], float('-inf'))", (x) => x[0].maskedFill(x[1], -Infinity));
c("masked_fill_tensor", [t(4, 5), mask(4, 5), t()], "x[0].masked_fill(x[1], x[2])", (x) => x[0].maskedFill(x[1], x[2]));

// elementwise functions
c("abs", [t(4, 5)], "x[0].abs()", (x) => x[0].abs());
c("exp", [t(4, 5)], "x[0].exp()", (x) => x[0].exp());
c("log", [pos(4, 5)], "x[0].log()", (x) => x[0].log());
c("log1p", [pos(4, 5)], "x[0].log1p()", (x) => x[0].log1p());
c("expm1", [t(4, 5)], "x[0].expm1()", (x) => x[0].expm1());
c("sqrt", [pos(4, 5)], "x[0].sqrt()", (x) => x[0].sqrt());
c("rsqrt", [pos(4, 5)], "x[0].rsqrt()", (x) => x[0].rsqrt());
c("sin", [t(4, 5)], "x[0].sin()", (x) => x[0].sin());
c("cos", [t(4, 5)], "x[0].cos()", (x) => x[0].cos());
c("tanh", [t(4, 5)], "x[0].tanh()", (x) => x[0].tanh());
c("sigmoid", [t(4, 5)], "x[0].sigmoid()", (x) => x[0].sigmoid());
c("relu", [t(4, 5)], "F.relu(x[0])", (x) => x[0].relu());
c("silu", [t(4, 5)], "F.silu(x[0])", (x) => silu(x[0]));
c("gelu", [t(4, 5)], "F.gelu(x[0])", (x) => gelu(x[0]));
c("gelu_tanh", [t(4, 5)], "F.gelu(x[0], approximate='tanh')", (x) => x[0].gelu("tanh"));
c("erf", [t(4, 5)], "x[0].erf()", (x) => x[0].erf());
c("sign_floor_ceil_round", [u(-3, 3, 4, 5)], "[x[0].sign(), x[0].floor(), x[0].ceil(), x[0].round()]", (x) => [x[0].sign(), x[0].floor(), x[0].ceil(), x[0].round()]);
c("softmax", [t(3, 4, 5)], "F.softmax(x[0], -1)", (x) => softmax(x[0], -1));
c("softmax_dim0", [t(3, 4, 5)], "x[0].softmax(0)", (x) => x[0].softmax(0));
c("softmax_f64", [t(3, 5)], "x[0].softmax(1, dtype=torch.float64)", (x) => x[0].softmax(1, "float64"));
c("log_softmax", [t(3, 4, 5)], "F.log_softmax(x[0], -1)", (x) => logSoftmax(x[0], -1));
c("log_softmax_dim1", [t(3, 4, 5)], "x[0].log_softmax(1)", (x) => x[0].logSoftmax(1));

// reductions
c("sum", [t(3, 4, 5)], "x[0].sum()", (x) => x[0].sum());
c("sum_dim", [t(3, 4, 5)], "x[0].sum(1)", (x) => x[0].sum(1));
c("sum_dims_keepdim", [t(3, 4, 5)], "x[0].sum((0, 2), keepdim=True)", (x) => x[0].sum([0, 2], true));
c("mean", [t(3, 4, 5)], "x[0].mean()", (x) => x[0].mean());
c("mean_dim", [t(3, 4, 5)], "x[0].mean(-1)", (x) => x[0].mean(-1));
c("mean_dims_keepdim", [t(3, 4, 5)], "x[0].mean((1, 2), keepdim=True)", (x) => x[0].mean([1, 2], true));
c("var", [t(3, 4, 5)], "x[0].var()", (x) => x[0].var());
c("var_dim_correction0", [t(3, 4, 5)], "x[0].var(1, correction=0)", (x) => x[0].var(1, { correction: 0 }));
c("var_dims_keepdim", [t(3, 4, 5)], "x[0].var((0, 2), keepdim=True)", (x) => x[0].var([0, 2], { keepdim: true }));
c("std", [t(3, 4, 5)], "x[0].std()", (x) => x[0].std());
c("std_dim_correction0_keepdim", [t(3, 4, 5)], "x[0].std(-1, correction=0, keepdim=True)", (x) => x[0].std(-1, { correction: 0, keepdim: true }));
c("std_dims_correction2", [t(3, 4, 5)], "x[0].std((1, 2), correction=2)", (x) => x[0].std([1, 2], { correction: 2 }));
c("max", [t(3, 4, 5)], "x[0].max()", (x) => x[0].max());
c("max_dim", [t(3, 4, 5)], "x[0].max(1)", (x) => vi(x[0].maxAlong(1)));
c("max_dim_keepdim", [t(3, 4, 5)], "x[0].max(-1, keepdim=True)", (x) => vi(x[0].maxAlong(-1, true)));
c("min", [t(3, 4, 5)], "x[0].min()", (x) => x[0].min());
c("min_dim", [t(3, 4, 5)], "x[0].min(0)", (x) => vi(x[0].minAlong(0)));
c("min_dim_keepdim", [t(3, 4, 5)], "x[0].min(2, keepdim=True)", (x) => vi(x[0].minAlong(2, true)));
c("amax", [t(3, 4, 5)], "x[0].amax((0, 2))", (x) => x[0].amax([0, 2]));
c("amax_keepdim", [t(3, 4, 5)], "x[0].amax(1, keepdim=True)", (x) => x[0].amax(1, true));
c("argmax", [t(3, 4, 5)], "x[0].argmax()", (x) => x[0].argmax());
c("argmax_dim", [t(3, 4, 5)], "x[0].argmax(1, keepdim=True)", (x) => x[0].argmax(1, true));
c("argmin", [t(3, 4, 5)], "x[0].argmin()", (x) => x[0].argmin());
c("argmin_dim", [t(3, 4, 5)], "x[0].argmin(-1)", (x) => x[0].argmin(-1));
c("norm_2", [t(3, 4, 5)], "torch.linalg.vector_norm(x[0])", (x) => x[0].norm());
c("norm_1_dim", [t(3, 4, 5)], "torch.linalg.vector_norm(x[0], 1, dim=1)", (x) => x[0].norm(1, 1));
c("norm_2_dims_keepdim", [t(3, 4, 5)], "torch.linalg.vector_norm(x[0], 2, dim=(0, 2), keepdim=True)", (x) => x[0].norm(2, [0, 2], true));
c("norm_inf_dims", [t(3, 4, 5)], "torch.linalg.vector_norm(x[0], math.inf, dim=(1, 2))", (x) => x[0].norm(Infinity, [1, 2]));
c("logsumexp", [t(3, 4, 5)], "torch.logsumexp(x[0], 1)", (x) => x[0].logsumexp(1));
c("logsumexp_dims_keepdim", [t(3, 4, 5)], "x[0].logsumexp((0, 2), keepdim=True)", (x) => x[0].logsumexp([0, 2], true));
c("prod", [u(0.6, 1.4, 3, 4)], "x[0].prod()", (x) => x[0].prod());
c("cumsum", [t(3, 4, 5)], "x[0].cumsum(1)", (x) => x[0].cumsum(1));
c("cumsum_neg_dim", [t(3, 4, 5)], "x[0].cumsum(-1)", (x) => x[0].cumsum(-1));
c("topk", [t(4, 6)], "torch.topk(x[0], 3, dim=1)", (x) => vi(x[0].topk(3, 1)));
c("topk_smallest_dim0", [t(5, 3)], "torch.topk(x[0], 2, dim=0, largest=False)", (x) => vi(x[0].topk(2, 0, false)));
c("sort", [t(4, 6)], "torch.sort(x[0])", (x) => vi(x[0].sort()));
c("sort_descending_dim0", [t(4, 6)], "torch.sort(x[0], dim=0, descending=True)", (x) => vi(x[0].sort(0, true)));

// matrix products
c("matmul_2d", [t(4, 6), t(6, 3)], "x[0] @ x[1]", (x) => x[0].matmul(x[1]));
c("matmul_batched_broadcast", [t(2, 1, 4, 6), t(3, 6, 5)], "torch.matmul(x[0], x[1])", (x) => matmul(x[0], x[1]));
c("matmul_vector_matrix", [t(6), t(2, 6, 3)], "x[0] @ x[1]", (x) => x[0].matmul(x[1]));
c("matmul_matrix_vector", [t(2, 4, 6), t(6)], "x[0] @ x[1]", (x) => x[0].matmul(x[1]));
// A well-conditioned system (x[0] + 4·I), as ridge regression's normal equations are.
c("linalg_solve", [t(5, 5), t(5, 3)], "torch.linalg.solve(x[0] + 4 * torch.eye(5), x[1])", (x) => linalgSolve(x[0].add(eye(5).mul(4)), x[1]));
c("mm", [t(4, 6), t(6, 3)], "torch.mm(x[0], x[1])", (x) => mm(x[0], x[1]));
c("bmm", [t(3, 4, 6), t(3, 6, 2)], "torch.bmm(x[0], x[1])", (x) => bmm(x[0], x[1]));
c("baddbmm", [t(3, 4, 2), t(3, 4, 6), t(3, 6, 2)], "torch.baddbmm(x[0], x[1], x[2], beta=0.5, alpha=2.0)", (x) => baddbmm(x[0], x[1], x[2], 0.5, 2));
c("baddbmm_broadcast_input", [t(4, 2), t(3, 4, 6), t(3, 6, 2)], "torch.baddbmm(x[0], x[1], x[2])", (x) => baddbmm(x[0], x[1], x[2]));
c("linear", [t(2, 3, 6), t(4, 6), t(4)], "F.linear(x[0], x[1], x[2])", (x) => linear(x[0], x[1], x[2]));
c("linear_no_bias", [t(5, 6), t(4, 6)], "F.linear(x[0], x[1])", (x) => linear(x[0], x[1]));
c("einsum_matmul", [t(4, 6), t(6, 3)], "torch.einsum('ij,jk->ik', x[0], x[1])", (x) => einsum("ij,jk->ik", x[0], x[1]));
c("einsum_attention_scores", [t(2, 3, 5, 4), t(2, 3, 6, 4)], "torch.einsum('bhqd,bhkd->bhqk', x[0], x[1])", (x) => einsum("bhqd,bhkd->bhqk", x[0], x[1]));
c("einsum_outer", [t(4), t(3)], "torch.einsum('i,j->ij', x[0], x[1])", (x) => einsum("i,j->ij", x[0], x[1]));
c("einsum_trace_diag", [t(4, 4)], "[torch.einsum('ii', x[0]), torch.einsum('ii->i', x[0])]", (x) => [einsum("ii", x[0]), einsum("ii->i", x[0])]);
c("einsum_three_operands", [t(3, 4), t(4, 5), t(5)], "torch.einsum('ij,jk,k->i', x[0], x[1], x[2])", (x) => einsum("ij,jk,k->i", x[0], x[1], x[2]));

// convolution
c("conv2d", [t(2, 3, 7, 7), t(4, 3, 3, 3), t(4)], "F.conv2d(x[0], x[1], x[2])", (x) => conv2d(x[0], x[1], x[2]));
c("conv2d_stride_padding", [t(2, 3, 7, 7), t(4, 3, 3, 3), t(4)], "F.conv2d(x[0], x[1], x[2], stride=2, padding=1)", (x) => conv2d(x[0], x[1], x[2], { stride: 2, padding: 1 }));
c("conv2d_asymmetric", [t(2, 3, 7, 8), t(4, 3, 3, 2)], "F.conv2d(x[0], x[1], None, stride=(2, 1), padding=(0, 1))", (x) => conv2d(x[0], x[1], null, { stride: [2, 1], padding: [0, 1] }));
c("conv2d_same", [t(2, 3, 7, 7), t(4, 3, 3, 3), t(4)], "F.conv2d(x[0], x[1], x[2], padding='same')", (x) => conv2d(x[0], x[1], x[2], { padding: "same" }));
c("conv2d_same_dilation_even_kernel", [t(1, 2, 8, 8), t(3, 2, 4, 4)], "F.conv2d(x[0], x[1], padding='same', dilation=2)", (x) => conv2d(x[0], x[1], null, { padding: "same", dilation: 2 }));
c("conv2d_valid", [t(2, 3, 7, 7), t(4, 3, 3, 3)], "F.conv2d(x[0], x[1], padding='valid')", (x) => conv2d(x[0], x[1], null, { padding: "valid" }));
c("conv2d_dilation", [t(2, 3, 9, 9), t(4, 3, 3, 3), t(4)], "F.conv2d(x[0], x[1], x[2], padding=2, dilation=2)", (x) => conv2d(x[0], x[1], x[2], { padding: 2, dilation: 2 }));
c("conv2d_groups", [t(2, 4, 6, 6), t(6, 2, 3, 3), t(6)], "F.conv2d(x[0], x[1], x[2], padding=1, groups=2)", (x) => conv2d(x[0], x[1], x[2], { padding: 1, groups: 2 }));
c("conv2d_depthwise", [t(2, 4, 6, 6), t(4, 1, 3, 3)], "F.conv2d(x[0], x[1], stride=2, groups=4)", (x) => conv2d(x[0], x[1], null, { stride: 2, groups: 4 }));
c("conv_transpose2d", [t(2, 4, 5, 5), t(4, 3, 3, 3), t(3)], "F.conv_transpose2d(x[0], x[1], x[2])", (x) => convTranspose2d(x[0], x[1], x[2]));
c("conv_transpose2d_stride_padding_output_padding", [t(2, 4, 5, 5), t(4, 3, 3, 3), t(3)], "F.conv_transpose2d(x[0], x[1], x[2], stride=2, padding=1, output_padding=1)", (x) => convTranspose2d(x[0], x[1], x[2], { stride: 2, padding: 1, outputPadding: 1 }));
c("conv_transpose2d_groups", [t(2, 4, 5, 5), t(4, 2, 3, 3)], "F.conv_transpose2d(x[0], x[1], stride=(2, 1), padding=(1, 0), groups=2)", (x) => convTranspose2d(x[0], x[1], null, { stride: [2, 1], padding: [1, 0], groups: 2 }));
c("conv_transpose2d_dilation", [t(1, 2, 4, 4), t(2, 3, 3, 3), t(3)], "F.conv_transpose2d(x[0], x[1], x[2], stride=2, output_padding=1, dilation=2)", (x) => convTranspose2d(x[0], x[1], x[2], { stride: 2, outputPadding: 1, dilation: 2 }));

// normalisation
c("group_norm", [t(2, 6, 4, 4), t(6), t(6)], "F.group_norm(x[0], 3, x[1], x[2])", (x) => groupNorm(x[0], 3, x[1], x[2]));
c("group_norm_no_affine_eps", [t(2, 4, 3, 5)], "F.group_norm(x[0], 2, eps=1e-3)", (x) => groupNorm(x[0], 2, null, null, 1e-3));
c("layer_norm", [t(2, 3, 5), t(5), t(5)], "F.layer_norm(x[0], (5,), x[1], x[2])", (x) => layerNorm(x[0], [5], x[1], x[2]));
c("layer_norm_two_dims", [t(2, 3, 5), t(3, 5), t(3, 5)], "F.layer_norm(x[0], (3, 5), x[1], x[2], eps=1e-6)", (x) => layerNorm(x[0], [3, 5], x[1], x[2], 1e-6));
c("layer_norm_no_affine", [t(4, 6)], "F.layer_norm(x[0], (6,))", (x) => layerNorm(x[0], [6]));

// attention: the fused operator and the math fallback against the same PyTorch expression
c("sdpa", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2])", (x) => scaledDotProductAttention(x[0], x[1], x[2]));
c("sdpa_bool_mask", [...ATTN, mask(5, 5)], `F.scaled_dot_product_attention(x[0], x[1], x[2], attn_mask=${ATTN_BOOL_PY})`, (x) => scaledDotProductAttention(x[0], x[1], x[2], { attnMask: attnBool(x[3]) }));
c("sdpa_float_mask", [...ATTN, t(5, 6)], "F.scaled_dot_product_attention(x[0], x[1], x[2], attn_mask=x[3])", (x) => scaledDotProductAttention(x[0], x[1], x[2], { attnMask: x[3] }));
c("sdpa_causal", ATTN_SQ, "F.scaled_dot_product_attention(x[0], x[1], x[2], is_causal=True)", (x) => scaledDotProductAttention(x[0], x[1], x[2], { isCausal: true }));
c("sdpa_causal_rectangular", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], is_causal=True)", (x) => scaledDotProductAttention(x[0], x[1], x[2], { isCausal: true }));
c("sdpa_scale", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], scale=0.3)", (x) => scaledDotProductAttention(x[0], x[1], x[2], { scale: 0.3 }));
c("sdpa_dropout", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], dropout_p=0.25)", (x) => scaledDotProductAttention(x[0], x[1], x[2], { dropoutP: 0.25 }), { seed: 11 });
c("attn_math_dropout", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], dropout_p=0.25)", (x) => attentionByMath(x[0], x[1], x[2], null, 0.25, false, null), { seed: 11 });
c("attn_math", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2])", (x) => attentionByMath(x[0], x[1], x[2], null, 0, false, null));
c("attn_math_bool_mask", [...ATTN, mask(5, 5)], `F.scaled_dot_product_attention(x[0], x[1], x[2], attn_mask=${ATTN_BOOL_PY})`, (x) => attentionByMath(x[0], x[1], x[2], attnBool(x[3]), 0, false, null));
c("attn_math_float_mask", [...ATTN, t(5, 6)], "F.scaled_dot_product_attention(x[0], x[1], x[2], attn_mask=x[3])", (x) => attentionByMath(x[0], x[1], x[2], x[3], 0, false, null));
c("attn_math_causal", ATTN_SQ, "F.scaled_dot_product_attention(x[0], x[1], x[2], is_causal=True)", (x) => attentionByMath(x[0], x[1], x[2], null, 0, true, null));
c("attn_math_causal_rectangular", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], is_causal=True)", (x) => attentionByMath(x[0], x[1], x[2], null, 0, true, null));
c("attn_math_scale", ATTN, "F.scaled_dot_product_attention(x[0], x[1], x[2], scale=0.3)", (x) => attentionByMath(x[0], x[1], x[2], null, 0, false, 0.3));

// resampling and padding
c("interpolate_nearest_size", [t(2, 3, 4, 5)], "F.interpolate(x[0], size=(7, 9), mode='nearest')", (x) => interpolate(x[0], { size: [7, 9] }));
c("interpolate_nearest_scale", [t(2, 3, 4, 5)], "F.interpolate(x[0], scale_factor=2)", (x) => interpolate(x[0], { scaleFactor: 2 }));
c("interpolate_nearest_scale_down", [t(1, 2, 8, 6)], "F.interpolate(x[0], scale_factor=(0.5, 0.75), mode='nearest')", (x) => interpolate(x[0], { scaleFactor: [0.5, 0.75] }));
c("interpolate_bilinear_size", [t(2, 3, 4, 5)], "F.interpolate(x[0], size=(7, 9), mode='bilinear')", (x) => interpolate(x[0], { size: [7, 9], mode: "bilinear" }));
c("interpolate_bilinear_align_corners", [t(2, 3, 4, 5)], "F.interpolate(x[0], size=(7, 9), mode='bilinear', align_corners=True)", (x) => interpolate(x[0], { size: [7, 9], mode: "bilinear", alignCorners: true }));
c("interpolate_bilinear_scale", [t(2, 3, 4, 5)], "F.interpolate(x[0], scale_factor=1.5, mode='bilinear')", (x) => interpolate(x[0], { scaleFactor: 1.5, mode: "bilinear" }));
c("interpolate_bilinear_scale_down", [t(1, 2, 8, 8)], "F.interpolate(x[0], scale_factor=0.5, mode='bilinear')", (x) => interpolate(x[0], { scaleFactor: 0.5, mode: "bilinear" }));
c("interpolate_bicubic_size", [t(2, 3, 4, 5)], "F.interpolate(x[0], size=(7, 9), mode='bicubic')", (x) => interpolate(x[0], { size: [7, 9], mode: "bicubic" }));
c("interpolate_bicubic_align_corners", [t(2, 3, 4, 5)], "F.interpolate(x[0], size=(6, 8), mode='bicubic', align_corners=True)", (x) => interpolate(x[0], { size: [6, 8], mode: "bicubic", alignCorners: true }));
c("interpolate_bicubic_scale", [t(1, 2, 4, 5)], "F.interpolate(x[0], scale_factor=2, mode='bicubic')", (x) => interpolate(x[0], { scaleFactor: 2, mode: "bicubic" }));
c("pad_constant", [t(2, 3, 4, 5)], "F.pad(x[0], (1, 2, 0, 1))", (x) => pad(x[0], [1, 2, 0, 1]));
c("pad_constant_value", [t(2, 3, 4, 5)], "F.pad(x[0], (1, 2, 3, 0, 1, 1), value=0.5)", (x) => pad(x[0], [1, 2, 3, 0, 1, 1], "constant", 0.5));
c("pad_reflect", [t(2, 3, 4, 5)], "F.pad(x[0], (2, 1, 1, 3), mode='reflect')", (x) => pad(x[0], [2, 1, 1, 3], "reflect"));
c("pad_reflect_1d", [t(2, 3, 5)], "F.pad(x[0], (3, 2), mode='reflect')", (x) => pad(x[0], [3, 2], "reflect"));
c("pad_replicate", [t(2, 3, 4, 5)], "F.pad(x[0], (2, 1, 1, 3), mode='replicate')", (x) => pad(x[0], [2, 1, 1, 3], "replicate"));
c("pad_circular", [t(2, 3, 4, 5)], "F.pad(x[0], (2, 1, 1, 3), mode='circular')", (x) => pad(x[0], [2, 1, 1, 3], "circular"));

// dropout: identity cases, and exact parity for p > 0 through the same seeded default generator
c("dropout_p0_train", [t(4, 5)], "F.dropout(x[0], 0.0, True)", (x) => dropout(x[0], 0, true));
c("dropout_eval", [t(4, 5)], "F.dropout(x[0], 0.5, False)", (x) => dropout(x[0], 0.5, false));
c("dropout_train", [t(8, 16)], "F.dropout(x[0], 0.3, True)", (x) => dropout(x[0], 0.3, true), { seed: 7 });
c("dropout_train_p1", [t(4, 5)], "F.dropout(x[0], 1.0, True)", (x) => dropout(x[0], 1, true));

// embedding and losses
c("embedding", [t(10, 4), ints(0, 10, 3, 5)], "F.embedding(x[1], x[0])", (x) => embedding(x[0], x[1]));
c("cross_entropy", [t(6, 5), ints(0, 5, 6)], "F.cross_entropy(x[0], x[1])", (x) => crossEntropy(x[0], x[1]));
c("cross_entropy_ignore_index", [t(8, 5), ints(0, 5, 8)], "F.cross_entropy(x[0], x[1], ignore_index=1)", (x) => crossEntropy(x[0], x[1], { ignoreIndex: 1 }));
c("cross_entropy_label_smoothing", [t(6, 5), ints(0, 5, 6)], "F.cross_entropy(x[0], x[1], label_smoothing=0.1)", (x) => crossEntropy(x[0], x[1], { labelSmoothing: 0.1 }));
c("cross_entropy_ignore_smoothing_sum", [t(8, 5), ints(0, 5, 8)], "F.cross_entropy(x[0], x[1], ignore_index=2, label_smoothing=0.2, reduction='sum')", (x) => crossEntropy(x[0], x[1], { ignoreIndex: 2, labelSmoothing: 0.2, reduction: "sum" }));
c("cross_entropy_none_weight", [t(6, 5), ints(0, 5, 6), ng(pos(5))], "F.cross_entropy(x[0], x[1], weight=x[2], reduction='none')", (x) => crossEntropy(x[0], x[1], { weight: x[2], reduction: "none" }));
c("cross_entropy_spatial", [t(2, 4, 3, 3), ints(0, 4, 2, 3, 3)], "F.cross_entropy(x[0], x[1])", (x) => crossEntropy(x[0], x[1]));
c("cross_entropy_probabilities", [t(6, 5), t(6, 5)], "F.cross_entropy(x[0], x[1].softmax(1))", (x) => crossEntropy(x[0], x[1].softmax(1)));
c("mse_loss", [t(4, 5), t(4, 5)], "F.mse_loss(x[0], x[1])", (x) => mseLoss(x[0], x[1]));
c("mse_loss_sum", [t(4, 5), t(4, 5)], "F.mse_loss(x[0], x[1], reduction='sum')", (x) => mseLoss(x[0], x[1], "sum"));
c("mse_loss_none", [t(4, 5), t(4, 5)], "F.mse_loss(x[0], x[1], reduction='none')", (x) => mseLoss(x[0], x[1], "none"));

// shapes and views
c("reshape", [t(4, 5)], "x[0].reshape(5, 4)", (x) => x[0].reshape(5, 4));
c("reshape_infer", [t(2, 3, 4)], "x[0].reshape(-1, 2)", (x) => x[0].reshape(-1, 2));
c("view", [t(4, 5)], "x[0].view(2, 10)", (x) => x[0].view(2, 10));
c("permute", [t(2, 3, 4)], "x[0].permute(2, 0, 1)", (x) => x[0].permute(2, 0, 1));
c("transpose", [t(2, 3, 4)], "x[0].transpose(0, -1)", (x) => x[0].transpose(0, -1));
c("mT", [t(2, 3, 4)], "x[0].mT", (x) => x[0].mT());
c("flatten", [t(2, 3, 4)], "x[0].flatten()", (x) => x[0].flatten());
c("flatten_range", [t(2, 3, 4, 5)], "x[0].flatten(1, 2)", (x) => x[0].flatten(1, 2));
c("unflatten", [t(2, 6, 4)], "x[0].unflatten(1, (2, -1))", (x) => x[0].unflatten(1, [2, -1]));
c("squeeze", [t(1, 4, 1, 5)], "x[0].squeeze()", (x) => x[0].squeeze());
c("squeeze_dim", [t(1, 4, 1, 5)], "x[0].squeeze(2)", (x) => x[0].squeeze(2));
c("squeeze_dims", [t(1, 4, 1, 5)], "x[0].squeeze((0, -2))", (x) => x[0].squeeze([0, -2]));
c("unsqueeze", [t(4, 5)], "x[0].unsqueeze(1)", (x) => x[0].unsqueeze(1));
c("unsqueeze_neg", [t(4, 5)], "x[0].unsqueeze(-1)", (x) => x[0].unsqueeze(-1));
c("expand", [t(3, 1)], "x[0].expand(2, 3, 4)", (x) => x[0].expand(2, 3, 4));
c("expand_keep", [t(3, 1)], "x[0].expand(-1, 4)", (x) => x[0].expand(-1, 4));
c("expand_as", [t(1, 5), ng(t(4, 5))], "x[0].expand_as(x[1])", (x) => x[0].expandAs(x[1]));
c("repeat", [t(2, 3)], "x[0].repeat(2, 1, 3)", (x) => x[0].repeat(2, 1, 3));
c("contiguous", [t(3, 4)], "x[0].t().contiguous()", (x) => x[0].transpose(0, 1).contiguous());
c("cat", [t(2, 3), t(2, 1), t(2, 4)], "torch.cat([x[0], x[1], x[2]], 1)", (x) => cat([x[0], x[1], x[2]], 1));
c("cat_neg_dim", [t(2, 3, 4), t(2, 2, 4)], "torch.cat([x[0], x[1]], -2)", (x) => cat([x[0], x[1]], -2));
c("stack", [t(2, 3), t(2, 3), t(2, 3)], "torch.stack([x[0], x[1], x[2]])", (x) => stack([x[0], x[1], x[2]]));
c("stack_neg_dim", [t(2, 3), t(2, 3)], "torch.stack([x[0], x[1]], -1)", (x) => stack([x[0], x[1]], -1));
c("split", [t(3, 7)], "torch.split(x[0], 3, 1)", (x) => x[0].split(3, 1));
c("split_sizes", [t(6, 4)], "torch.split(x[0], [1, 3, 2])", (x) => x[0].split([1, 3, 2]));
c("split_sizes_fn", [t(3, 6)], "torch.split(x[0], [4, 2], -1)", (x) => splitSizes(x[0], [4, 2], -1));
c("chunk", [t(3, 7)], "x[0].chunk(3, 1)", (x) => x[0].chunk(3, 1));
c("narrow", [t(4, 6)], "x[0].narrow(1, 2, 3)", (x) => x[0].narrow(1, 2, 3));
c("narrow_neg_start", [t(4, 6)], "x[0].narrow(-1, -4, 2)", (x) => x[0].narrow(-1, -4, 2));
c("slice", [t(4, 6)], "x[0][:, 1:-1:2]", (x) => x[0].slice(1, 1, -1, 2));
c("select", [t(4, 6)], "x[0].select(1, -2)", (x) => x[0].select(1, -2));
c("index_select", [t(4, 5), ints(0, 5, 7)], "x[0].index_select(1, x[1])", (x) => x[0].indexSelect(1, x[1]));
c("gather", [t(4, 5), ints(0, 5, 4, 3)], "x[0].gather(1, x[1])", (x) => x[0].gather(1, x[1]));
c("alias", [t(4, 5)], "torch.ops.aten.alias(x[0])", (x) => x[0].alias());
c("flip", [t(3, 4, 5)], "x[0].flip((0, 2))", (x) => x[0].flip(0, 2));

// indexing (Tensor.index): numbers, slices, "...", null (a whole dim), index tensors and boolean masks
c("index_int", [t(4, 5, 6)], "x[0][1]", (x) => x[0].index(1));
c("index_neg_ints", [t(4, 5, 6)], "x[0][-1, -2]", (x) => x[0].index(-1, -2));
c("index_slice_neg_end", [t(4, 5, 6)], "x[0][1:-1]", (x) => x[0].index({ start: 1, end: -1 }));
c("index_slice_neg_start", [t(4, 5, 6)], "x[0][:, -3:]", (x) => x[0].index(null, { start: -3 }));
c("index_slice_steps", [t(4, 5, 6)], "x[0][::2, 1::2]", (x) => x[0].index({ step: 2 }, { start: 1, step: 2 }));
c("index_slice_neg_start_end_step", [t(6, 5)], "x[0][-5:-1:3]", (x) => x[0].index({ start: -5, end: -1, step: 3 }));
c("index_slice_reverse", [t(4, 6)], "x[0][:, torch.from_numpy(np.arange(6)[::-1].copy())]", (x) => x[0].index(null, { step: -1 }));
c("index_slice_neg_step", [t(4, 6)], "x[0][:, torch.from_numpy(np.arange(6)[4:0:-2].copy())]", (x) => x[0].index(null, { start: 4, end: 0, step: -2 }));
c("index_slice_neg_step_neg_bounds", [t(7, 3)], "x[0][torch.from_numpy(np.arange(7)[-2:-7:-3].copy())]", (x) => x[0].index({ start: -2, end: -7, step: -3 }));
c("index_slice_neg_step_clamped", [t(5, 3)], "x[0][torch.from_numpy(np.arange(5)[10:-10:-2].copy())]", (x) => x[0].index({ start: 10, end: -10, step: -2 }));
c("index_ellipsis", [t(4, 5, 6)], "x[0][..., 0]", (x) => x[0].index("...", 0));
c("index_int_ellipsis_slice", [t(4, 5, 6)], "x[0][0, ..., 1:]", (x) => x[0].index(0, "...", { start: 1 }));
c("index_null", [t(4, 5, 6)], "x[0][:, 1]", (x) => x[0].index(null, 1));
c("index_tensor", [t(4, 5), ints(-4, 4, 2, 3)], "x[0][x[1]]", (x) => x[0].index(x[1]));
c("index_tensor_dim1", [t(4, 5), ints(-5, 5, 3)], "x[0][:, x[1]]", (x) => x[0].index(null, x[1]));
c("index_two_tensors_separated", [t(4, 5, 6), ints(0, 4, 3), ints(0, 6, 3)], "x[0][x[1], :, x[2]]", (x) => x[0].index(x[1], null, x[2]));
c("index_two_tensors_broadcast", [t(4, 5, 6), ints(0, 4, 3, 1), ints(0, 5, 2)], "x[0][x[1], x[2]]", (x) => x[0].index(x[1], x[2]));
c("index_int_and_tensor", [t(4, 5, 6), ints(0, 6, 2)], "x[0][0, :, x[1]]", (x) => x[0].index(0, null, x[1]));
c("index_slice_and_tensor", [t(4, 5, 6), ints(0, 5, 2)], "x[0][1:, x[1]]", (x) => x[0].index({ start: 1 }, x[1]));
c("index_mask_full", [t(4, 5), mask(4, 5)], "x[0][x[1]]", (x) => x[0].index(x[1]));
c("index_mask_rows", [t(4, 5), mask(4)], "x[0][x[1]]", (x) => x[0].index(x[1]));
c("index_mask_dim1", [t(3, 5, 2), mask(5)], "x[0][:, x[1]]", (x) => x[0].index(null, x[1]));

// other floating dtypes (per-dtype default tolerances)
c("f64_ops", [as("float64", t(3, 4)), as("float64", t(4, 5))], "[x[0] @ x[1], (x[0] * 2).softmax(-1), x[0].exp().sum(0)]", (x) => [x[0].matmul(x[1]), x[0].mul(2).softmax(-1), x[0].exp().sum(0)]);
c("f64_conv2d_group_norm", [as("float64", t(1, 4, 5, 5)), as("float64", t(4, 4, 3, 3))], "F.group_norm(F.conv2d(x[0], x[1], padding=1), 2)", (x) => groupNorm(conv2d(x[0], x[1], null, { padding: 1 }), 2));
c("f16_ops", [as("float16", t(3, 4)), as("float16", t(4))], "[x[0] + x[1], x[0] * x[1], F.gelu(x[0]), x[0].sum(1)]", (x) => [x[0].add(x[1]), x[0].mul(x[1]), gelu(x[0]), x[0].sum(1)]);
c("bf16_ops", [as("bfloat16", t(3, 4)), as("bfloat16", t(4, 5))], "[x[0] @ x[1], x[0].softmax(-1), F.silu(x[0])]", (x) => [x[0].matmul(x[1]), x[0].softmax(-1), silu(x[0])]);

// conversions and copies
c("to_float16_round_trip", [t(4, 5)], "[x[0].half(), x[0].half().float()]", (x) => [x[0].half(), x[0].half().float()]);
c("to_bfloat16_round_trip", [t(4, 5)], "[x[0].bfloat16(), x[0].bfloat16().float()]", (x) => [x[0].bfloat16(), x[0].bfloat16().float()]);
c("to_float64_round_trip", [t(4, 5)], "[x[0].double(), x[0].double().float()]", (x) => [x[0].to("float64"), x[0].to("float64").float()]);
c("to_int64_round_trip", [u(-20, 20, 4, 5)], "[x[0].long(), x[0].long().float()]", (x) => [x[0].long(), x[0].long().float()]);
c("to_dtype_object", [ints(-100, 100, 4, 5)], "[x[0].to(torch.float16), x[0].to(torch.bfloat16), x[0].to(torch.float64)]", (x) => [x[0].to({ dtype: "float16" }), x[0].to("bfloat16"), x[0].to("float64")]);
c("clone", [t(4, 5)], "x[0].clone()", (x) => x[0].clone());
c("detach", [t(4, 5)], "[x[0].detach(), x[0].detach() * x[0]]", (x) => [x[0].detach(), x[0].detach().mul(x[0])]);
c("copy_", [t(4, 5)], "torch.zeros(4, 5).copy_(x[0])", (x) => zeros([4, 5]).copy_(x[0]));
c("copy_broadcast_cast", [t(4, 5)], "torch.zeros(3, 4, 5, dtype=torch.float64).copy_(x[0])", (x) => zeros([3, 4, 5], { dtype: "float64" }).copy_(x[0]));

// in place
c("add_", [t(4, 5), t(5)], "x[0].clone().add_(x[1], alpha=0.5)", (x) => x[0].clone().add_(x[1], 0.5));
c("add_scalar_", [t(4, 5)], "x[0].clone().add_(2.5)", (x) => x[0].clone().add_(2.5));
c("add_no_grad_", [ng(t(4, 5)), ng(t(4, 5))], "x[0].add_(x[1])", (x) => x[0].add_(x[1]));
c("sub_", [t(4, 5), t(4, 5)], "x[0].clone().sub_(x[1], alpha=2)", (x) => x[0].clone().sub_(x[1], 2));
c("sub_scalar_", [t(4, 5)], "x[0].clone().sub_(0.5)", (x) => x[0].clone().sub_(0.5));
c("mul_", [t(4, 5), t(4, 1)], "x[0].clone().mul_(x[1])", (x) => x[0].clone().mul_(x[1]));
c("mul_scalar_", [t(4, 5)], "x[0].clone().mul_(-3)", (x) => x[0].clone().mul_(-3));
c("div_", [t(4, 5), pos(5)], "x[0].clone().div_(x[1])", (x) => x[0].clone().div_(x[1]));
c("div_scalar_", [t(4, 5)], "x[0].clone().div_(4)", (x) => x[0].clone().div_(4));
c("zero_", [t(4, 5)], "x[0].clone().zero_()", (x) => x[0].clone().zero_());
c("fill_", [ng(t(4, 5))], "x[0].fill_(1.25)", (x) => x[0].fill_(1.25));
c("clamp_", [t(4, 5)], "x[0].clone().clamp_(-0.2, 0.4)", (x) => x[0].clone().clamp_(-0.2, 0.4));
c("sqrt_", [pos(4, 5)], "x[0].clone().sqrt_()", (x) => x[0].clone().sqrt_());
c("lerp_", [t(4, 5), t(4, 5)], "x[0].clone().lerp_(x[1], 0.3)", (x) => x[0].clone().lerp_(x[1], 0.3));
c("addcmul_", [t(4, 5), t(4, 5), t(5)], "x[0].clone().addcmul_(x[1], x[2], value=0.5)", (x) => x[0].clone().addcmul_(x[1], x[2], 0.5));
c("addcdiv_", [t(4, 5), t(4, 5), pos(4, 5)], "x[0].clone().addcdiv_(x[1], x[2], value=-2)", (x) => x[0].clone().addcdiv_(x[1], x[2], -2));
c("addcdiv_no_grad_", [ng(t(4, 5)), ng(t(4, 5)), ng(pos(4, 5))], "x[0].addcdiv_(x[1], x[2])", (x) => x[0].addcdiv_(x[1], x[2]));

// creation
c("arange", [], "[torch.arange(5), torch.arange(2, 11, 3), torch.arange(0, 1, 0.25)]", () => [arange(5), arange(2, 11, 3), arange(0, 1, 0.25)]);
c("linspace_eye_full", [], "[torch.linspace(-1, 1, 7), torch.eye(3), torch.full((2, 3), 1.5), torch.full((2,), 3), torch.zeros(2), torch.ones(2, dtype=torch.int64)]", () => [linspace(-1, 1, 7), eye(3), full([2, 3], 1.5), full([2], 3), zeros([2]), ones([2], { dtype: "int64" })]);
c("tensor_nested", [], "torch.tensor([[1.5, -2.0], [3.25, 4.0]])", () => tensor([[1.5, -2], [3.25, 4]]));
c("like", [t(3, 4)], "[torch.zeros_like(x[0]), torch.ones_like(x[0], dtype=torch.float64)]", (x) => [zerosLike(x[0]), onesLike(x[0], { dtype: "float64" })]);
c("empty_shape", [], "torch.empty(2, 0, 3)", () => empty([2, 0, 3]));

// ---- random numbers ----------------------------------------------------------------------------------

export interface RandomSpec {
  name: string;
  torch: string;
  /** Seeds as decimal strings (they may exceed 2^53). */
  seeds: string[];
}
export interface RandomCase extends RandomSpec {
  run: (g: Generator) => Outputs;
}

export const randomCases: RandomCase[] = [];
const SEEDS = ["0", "1", "42", "123456789", "9223372036854775817"];

function r(name: string, torch: string, run: (g: Generator) => Outputs, seeds = SEEDS): void {
  if (randomCases.some((k) => k.name === name)) throw new Error(`random case '${name}' is defined twice`);
  randomCases.push({ name, torch, run, seeds });
}

/** A seed string as manualSeed takes it: a number when exact, else a BigInt. */
export function seedValue(seed: string): number | bigint {
  const n = BigInt(seed);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

// the default generator after manual_seed
r("randn_f32", "[torch.randn(3, 4), torch.randn(37)]", () => [randn([3, 4]), randn([37])]);
r("randn_f64", "[torch.randn(5, dtype=torch.float64), torch.randn(2, 20, dtype=torch.float64)]", () => [randn([5], { dtype: "float64" }), randn([2, 20], { dtype: "float64" })]);
r("randn_f16", "[torch.randn(7, dtype=torch.float16), torch.randn(33, dtype=torch.float16)]", () => [randn([7], { dtype: "float16" }), randn([33], { dtype: "float16" })]);
r("randn_bf16", "[torch.randn(7, dtype=torch.bfloat16), torch.randn(4, 9, dtype=torch.bfloat16)]", () => [randn([7], { dtype: "bfloat16" }), randn([4, 9], { dtype: "bfloat16" })]);
r("rand_dtypes", "[torch.rand(3, 5), torch.rand(17, dtype=torch.float64), torch.rand(9, dtype=torch.float16), torch.rand(9, dtype=torch.bfloat16)]", () => [rand([3, 5]), rand([17], { dtype: "float64" }), rand([9], { dtype: "float16" }), rand([9], { dtype: "bfloat16" })]);
r("randint", "[torch.randint(0, 10, (20,)), torch.randint(-5, 5, (3, 4)), torch.randint(0, 2**40, (6,)), torch.randint(0, 7, (5,), dtype=torch.int32), torch.randint(3, 9, (4,), dtype=torch.float32)]", () => [randint(0, 10, [20]), randint(-5, 5, [3, 4]), randint(0, 2 ** 40, [6]), randint(0, 7, [5], { dtype: "int32" }), randint(3, 9, [4], { dtype: "float32" })]);
r("normal", "[torch.normal(2.0, 3.0, (4, 5)), torch.normal(-1.0, 0.5, (20,), dtype=torch.float64)]", () => [normal(2, 3, [4, 5]), normal(-1, 0.5, [20], { dtype: "float64" })]);
r("uniform_", "[torch.empty(4, 5).uniform_(-2, 3), torch.empty(6, dtype=torch.float64).uniform_(), torch.empty(6, dtype=torch.float16).uniform_(0, 4), torch.empty(6, dtype=torch.bfloat16).uniform_(-1, 1)]", () => [empty([4, 5]).uniform_(-2, 3), empty([6], { dtype: "float64" }).uniform_(), empty([6], { dtype: "float16" }).uniform_(0, 4), empty([6], { dtype: "bfloat16" }).uniform_(-1, 1)]);
r("normal_", "[torch.empty(4, 5).normal_(1, 2), torch.empty(18, dtype=torch.float64).normal_(), torch.empty(6, dtype=torch.float16).normal_(0, 3), torch.empty(20, dtype=torch.bfloat16).normal_()]", () => [empty([4, 5]).normal_(1, 2), empty([18], { dtype: "float64" }).normal_(), empty([6], { dtype: "float16" }).normal_(0, 3), empty([20], { dtype: "bfloat16" }).normal_()]);
r("dropout", "[F.dropout(torch.ones(64), 0.3, True), F.dropout(torch.ones(3, 7, dtype=torch.float64), 0.5, True), F.dropout(torch.ones(40, dtype=torch.float16), 0.1, True)]", () => [dropout(ones([64]), 0.3, true), dropout(ones([3, 7], { dtype: "float64" }), 0.5, true), dropout(ones([40], { dtype: "float16" }), 0.1, true)]);
r("like", "[torch.randn_like(torch.zeros(3, 4)), torch.rand_like(torch.zeros(5, dtype=torch.float64))]", () => [randnLike(zeros([3, 4])), randLike(zeros([5], { dtype: "float64" }))]);
r("rng_state", "[torch.get_rng_state(), torch.randn(5), torch.get_rng_state()]", () => [getRngState(), randn([5]), getRngState()]);
// private generators: their own streams, independent of the default one
r("generator_randn_rand", "[torch.randn(3, 4, generator=g), torch.randn(4), torch.rand(20, generator=g), torch.randn(5, generator=g, dtype=torch.float64)]", (g) => [randn([3, 4], { generator: g }), randn([4]), rand([20], { generator: g }), randn([5], { generator: g, dtype: "float64" })]);
r("generator_randint_normal", "[torch.randint(0, 100, (10,), generator=g), torch.normal(0.5, 2.0, (3, 3), generator=g), torch.normal(0.0, 1.0, (17,), generator=g, dtype=torch.float64)]", (g) => [randint(0, 100, [10], { generator: g }), normal(0.5, 2, [3, 3], { generator: g }), normal(0, 1, [17], { generator: g, dtype: "float64" })]);
r("generator_in_place", "[torch.empty(7).uniform_(-1, 1, generator=g), torch.empty(5, 4).normal_(0, 1, generator=g), torch.empty(6, dtype=torch.bfloat16).normal_(generator=g)]", (g) => [empty([7]).uniform_(-1, 1, g), empty([5, 4]).normal_(0, 1, g), empty([6], { dtype: "bfloat16" }).normal_(0, 1, g)]);
r("generator_multinomial", "[torch.multinomial(torch.tensor([1.0, 0.0, 3.0, 0.5]), 12, True, generator=g), torch.multinomial(torch.tensor([[0.2, 0.8, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64), 2, generator=g), torch.multinomial(torch.tensor([5.0, 1.0, 1.0, 2.0, 0.25]), 3)]", (g) => [multinomial(tensor([1, 0, 3, 0.5]), 12, { replacement: true, generator: g }), multinomial(tensor([[0.2, 0.8, 0], [1, 1, 1]], { dtype: "float64" }), 2, { generator: g }), multinomial(tensor([5, 1, 1, 2, 0.25]), 3)]);
r("generator_half", "[torch.randn(9, generator=g, dtype=torch.float16), torch.rand(9, generator=g, dtype=torch.bfloat16)]", (g) => [randn([9], { generator: g, dtype: "float16" }), rand([9], { generator: g, dtype: "bfloat16" })]);
r("generator_state", "[g.get_state(), torch.randn(6, generator=g), g.get_state()]", (g) => [g.getState(), randn([6], { generator: g }), g.getState()]);

// ---- fixture files shared by the parity tests -------------------------------------------------------------

/** A generated fixture folder: its manifest.json and the tensors of its tensors.safetensors. */
export class Fixture {
  readonly manifest: unknown;
  private readonly tensors: Map<string, Tensor>;

  constructor(dir: URL) {
    this.manifest = JSON.parse(readFileSync(new URL("manifest.json", dir), "utf8"));
    this.tensors = loadSafetensors(fileURLToPath(new URL("tensors.safetensors", dir))).tensors;
  }

  /** A fresh copy of the named fixture tensor (owned by the caller's scope; cases may change it in place). */
  tensor(name: string): Tensor {
    const found = this.tensors.get(name);
    if (!found) throw new Error(`fixture tensor ${name} is missing`);
    return found.clone();
  }

  dispose(): void {
    for (const tensor of this.tensors.values()) tensor.dispose();
  }
}

/** The generated fixture folder of an oracle generator, from dist/test/engine/. */
export function fixtureDir(name: string): URL {
  return new URL(`../../../test/fixtures/generated/${name}/`, import.meta.url);
}

// ---- printed for the oracle ------------------------------------------------------------------------------

export function caseSpec(k: ParityCase): CaseSpec {
  return {
    name: k.name, inputs: k.inputs, torch: k.torch, grad: k.grad, seed: k.seed, tol: k.tol, gradTol: k.gradTol, why: k.why,
  };
}
export function randomSpec(k: RandomCase): RandomSpec {
  return { name: k.name, torch: k.torch, seeds: k.seeds };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify({ ops: cases.map(caseSpec), random: randomCases.map(randomSpec) }) + "\n");
}
