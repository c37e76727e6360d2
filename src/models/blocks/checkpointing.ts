/**
 * Gradient checkpointing without custom autograd functions: a tape of segments that are run without
 * recording autograd in the forward pass and recomputed, one at a time, in the backward pass.
 *
 * PyTorch's torch.utils.checkpoint is a custom autograd Function whose backward recomputes the segment. The
 * engine cannot register one (there is no way for libtorch's backward to call back into JavaScript), so the
 * backward pass is driven from here instead:
 *
 *   forward   `tape.run(segment, inputs)` runs the segment under noGrad (no activations are saved) and
 *             returns its outputs as handles on fresh leaf tensors that require grad. Later code (more
 *             segments, the loss) builds its graph on those leaves as usual. The tape keeps each segment's
 *             inputs and output leaves. An input that did not come from the tape ("external": the time
 *             embedding, the text states, the first conv's output) is replaced by a leaf of its own, and the
 *             tape remembers the original with its graph.
 *   backward  `tape.backward(loss)`: (1) loss.backward() fills the .grad of the output leaves the loss used
 *             (and of parameters outside the segments). (2) The segments, last to first: recompute with grad
 *             enabled from the saved input leaves, then backward(recomputed outputs, their leaves' .grad).
 *             Parameters accumulate their gradients; input leaves accumulate theirs. Since a segment's inputs
 *             are earlier segments' output leaves, and a leaf used by several segments (the UNet's skip
 *             connections make it a DAG) simply accumulates from each, every output's gradient is complete
 *             by the time its own segment is recomputed (reverse creation order is a reverse topological
 *             order). (3) Each external input's gradient is sent into its original graph, at the point of the
 *             walk where it was first used (an external may depend on earlier segments' outputs).
 *
 * Gradients equal those without checkpointing (same operations, same order; the recompute reproduces the
 * forward exactly, dropout included: the default generator's state is saved before each segment and
 * restored for its recompute). Memory: between forward and backward only segment boundaries are alive; in
 * the backward, one segment's activations at a time.
 *
 * Rules: call `backward` inside the same autocast region as the forward (the recompute must produce the same
 * dtypes; a mismatch is a clear error). Graphs outside the segments are backpropagated with retainGraph so
 * that external inputs sharing a graph can be sent back separately; they are freed with their tensors.
 * CUDA dropout masks are not reproduced (only the CPU generator's state is saved); Stable Diffusion's UNet
 * has dropout 0.
 */
import { addBackwardGuard, backward, enableGrad, getRngState, keep, noGrad, setRngState, tidy, withoutBackwardGuards, type Tensor } from "../../engine/index.js";

interface Segment {
  /** Recomputes the outputs from the inputs. */
  run: (inputs: Tensor[]) => Tensor[];
  /** The inputs as passed to `run` (tape leaves or tensors that need no gradient), kept by the tape. */
  inputs: Tensor[];
  /** The output leaves (kept by the tape), whose .grad collects the outputs' gradients. */
  outputs: Tensor[];
  /** Externals first used by this segment: [original (kept), its leaf]. */
  externals: [Tensor, Tensor][];
  /** The default generator's state before the forward run (for dropout). */
  rngState: Tensor;
}

export class CheckpointTape {
  readonly #segments: Segment[] = [];
  /** Any handle given out (outputs returned to the caller) or taken in (externals) → the tape's leaf. */
  readonly #leafOf = new Map<Tensor, Tensor>();
  /** While segments are recorded, any other backward pass fails (it would miss their parameters' gradients). */
  #removeGuard: (() => void) | null = null;
  readonly #owner: string;

  /** `owner` names the model in the error a wrong backward call gets (e.g. "the UNet"). */
  constructor(owner = "the model") {
    this.#owner = owner;
  }

  /** Segments recorded and not yet backpropagated. */
  get length(): number {
    return this.#segments.length;
  }

  /**
   * Runs `segment(inputs)` without autograd and records it. Returns the outputs as new handles on leaves that
   * require grad (the caller owns the handles; the tape keeps its own). Inputs may be earlier outputs of this
   * tape, tensors that require grad (external: their gradient is sent back in `backward`), or plain tensors.
   */
  run(segment: (inputs: Tensor[]) => Tensor[], inputs: Tensor[]): Tensor[] {
    const externals: [Tensor, Tensor][] = [];
    const tapeInputs = inputs.map((input) => {
      const known = this.#leafOf.get(input);
      if (known) return known;
      if (!input.requiresGrad) return keep(input.alias());
      const leaf = keep(input.detach()).requiresGrad_(true);
      externals.push([keep(input.alias()), leaf]);
      this.#leafOf.set(input, leaf);
      return leaf;
    });
    const rngState = keep(getRngState());
    const outputs = tidy(() => noGrad(() => segment(tapeInputs)).map((result) => keep(result.detach()).requiresGrad_(true)));
    this.#segments.push({ run: segment, inputs: tapeInputs, outputs, externals, rngState });
    this.#removeGuard ??= addBackwardGuard(() => this.#segments.length === 0 ? undefined
      : `gradient checkpointing recorded ${this.#segments.length} blocks of ${this.#owner} that a plain backward() cannot reach: ` +
        "call the model's backward(loss) (e.g. unet.backward(loss)), or run forward passes that will not be backpropagated under noGrad");
    return outputs.map((leaf) => {
      const handle = leaf.alias();
      this.#leafOf.set(handle, leaf);
      return handle;
    });
  }

  /**
   * Backpropagates `loss` (optionally with an upstream `gradient`) through everything recorded, leaving the
   * gradients in the parameters' and external inputs' `.grad` as loss.backward() would without checkpointing.
   * The tape is empty afterwards.
   */
  backward(loss: Tensor, gradient?: Tensor): void {
    try {
      withoutBackwardGuards(() => {
        backward([loss], [gradient ?? null], { retainGraph: true });
        for (let i = this.#segments.length - 1; i >= 0; i--) {
          const segment = this.#segments[i]!;
          this.#recompute(segment);
          this.#sendExternals(segment);
        }
      });
    } finally {
      this.clear();
    }
  }

  /** Forgets everything recorded (what a forward pass without a following backward leaves behind). */
  clear(): void {
    for (const segment of this.#segments) {
      for (const tensor of [...segment.inputs, ...segment.outputs, ...segment.externals.flat(), segment.rngState]) tensor.dispose();
    }
    this.#segments.length = 0;
    this.#leafOf.clear();
    this.#removeGuard?.();
    this.#removeGuard = null;
  }

  /** Recomputes a segment with autograd and backpropagates its outputs' gradients (all inside one tidy scope). */
  #recompute(segment: Segment): void {
    tidy(() => {
      const grads = segment.outputs.map((leaf) => leaf.grad);
      if (grads.every((g) => g === null)) return;
      const current = getRngState();
      setRngState(segment.rngState);
      let recomputed: Tensor[];
      try {
        recomputed = enableGrad(() => segment.run(segment.inputs));
      } finally {
        setRngState(current);
      }
      const pairs = recomputed.map((output, i) => [output, grads[i] ?? null] as const).filter(([output, g]) => g !== null && output.requiresGrad);
      for (const [output, g] of pairs) {
        if (output.dtype !== g!.dtype) {
          throw new Error(`gradient checkpointing: a recomputed output is ${output.dtype} but the forward produced ${g!.dtype}; call backward inside the same autocast region as the forward`);
        }
      }
      if (pairs.length > 0) backward(pairs.map(([output]) => output), pairs.map(([, g]) => g));
    });
  }

  /** Sends the gradients of the externals first used by `segment` into their original graphs. */
  #sendExternals(segment: Segment): void {
    tidy(() => {
      const pending = segment.externals.map(([original, leaf]) => [original, leaf.grad] as const).filter(([, g]) => g !== null);
      if (pending.length > 0) backward(pending.map(([original]) => original), pending.map(([, g]) => g), { retainGraph: true });
    });
  }
}
