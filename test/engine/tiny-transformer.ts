/**
 * A tiny GPT-like language model (after nanoGPT), built from the engine's nn modules: token embedding plus
 * learned position embedding, pre-LayerNorm blocks of causal multi-head self-attention and a GELU
 * feed-forward network, a final LayerNorm and a linear head to vocabulary logits.
 *
 * test/oracle/fixtures_training.py defines the same model in PyTorch with the same submodule names and the
 * same parameter creation order, so `manualSeed(s)` before construction gives both identical weights and
 * the training-parity test can compare them step by step. The benchmark can reuse it as well.
 */
import { arange, crossEntropy, scaledDotProductAttention, type Tensor } from "../../src/engine/index.js";
import { Embedding, GELU, LayerNorm, Linear, Module, ModuleList } from "../../src/engine/nn/index.js";

export interface TinyTransformerConfig {
  vocabSize: number;
  /** The longest sequence the position embedding covers. */
  blockSize: number;
  /** Width of the residual stream. */
  dim: number;
  /** Attention heads; dim must divide by it. */
  heads: number;
  layers: number;
}

/** Multi-head self-attention in which each position attends only to itself and earlier positions. */
export class CausalSelfAttention extends Module {
  /** Queries, keys and values from one matrix multiplication. */
  readonly qkv: Linear;
  readonly proj: Linear;

  constructor(readonly dim: number, readonly heads: number) {
    super();
    if (dim % heads !== 0) throw new Error(`dim ${dim} must be divisible by heads ${heads}`);
    this.qkv = this.registerModule("qkv", new Linear(dim, 3 * dim));
    this.proj = this.registerModule("proj", new Linear(dim, dim));
  }

  /** (batch, time, dim) → (batch, time, dim). */
  forward(x: Tensor): Tensor {
    const [batch, time, dim] = x.shape as [number, number, number];
    const splitHeads = (t: Tensor): Tensor => t.view(batch, time, this.heads, dim / this.heads).transpose(1, 2);
    const [q, k, v] = this.qkv.forward(x).split(dim, 2).map(splitHeads) as [Tensor, Tensor, Tensor];
    const attended = scaledDotProductAttention(q, k, v, { isCausal: true });
    return this.proj.forward(attended.transpose(1, 2).contiguous().view(batch, time, dim));
  }
}

/** Position-wise MLP: expand to 4·dim, GELU, contract back. */
export class FeedForward extends Module {
  readonly expand: Linear;
  readonly activation: GELU;
  readonly contract: Linear;

  constructor(dim: number) {
    super();
    this.expand = this.registerModule("expand", new Linear(dim, 4 * dim));
    this.activation = this.registerModule("activation", new GELU());
    this.contract = this.registerModule("contract", new Linear(4 * dim, dim));
  }

  forward(x: Tensor): Tensor {
    return this.contract.forward(this.activation.forward(this.expand.forward(x)));
  }
}

/** x + attention(norm(x)), then + feedForward(norm(·)): the pre-LayerNorm residual block. */
export class Block extends Module {
  readonly attentionNorm: LayerNorm;
  readonly attention: CausalSelfAttention;
  readonly feedForwardNorm: LayerNorm;
  readonly feedForward: FeedForward;

  constructor(dim: number, heads: number) {
    super();
    this.attentionNorm = this.registerModule("attention_norm", new LayerNorm(dim));
    this.attention = this.registerModule("attention", new CausalSelfAttention(dim, heads));
    this.feedForwardNorm = this.registerModule("feed_forward_norm", new LayerNorm(dim));
    this.feedForward = this.registerModule("feed_forward", new FeedForward(dim));
  }

  forward(x: Tensor): Tensor {
    const afterAttention = x.add(this.attention.forward(this.attentionNorm.forward(x)));
    return afterAttention.add(this.feedForward.forward(this.feedForwardNorm.forward(afterAttention)));
  }
}

export class TinyTransformer extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  readonly blocks: ModuleList<Block>;
  readonly finalNorm: LayerNorm;
  /** Maps the residual stream to logits over the vocabulary. */
  readonly lmHead: Linear;

  constructor(readonly config: TinyTransformerConfig) {
    super();
    const { vocabSize, blockSize, dim, heads, layers } = config;
    this.tokenEmbedding = this.registerModule("token_embedding", new Embedding(vocabSize, dim));
    this.positionEmbedding = this.registerModule("position_embedding", new Embedding(blockSize, dim));
    this.blocks = this.registerModule("blocks", new ModuleList(Array.from({ length: layers }, () => new Block(dim, heads))));
    this.finalNorm = this.registerModule("final_norm", new LayerNorm(dim));
    this.lmHead = this.registerModule("lm_head", new Linear(dim, vocabSize, { bias: false }));
  }

  /** Logits (batch, time, vocabSize) for int64 tokens (batch, time). */
  forward(tokens: Tensor): Tensor {
    const time = tokens.size(1);
    if (time > this.config.blockSize) throw new Error(`sequence of ${time} tokens is longer than the block size ${this.config.blockSize}`);
    const positions = arange(time, undefined, 1, { dtype: "int64", device: tokens.device });
    let x = this.tokenEmbedding.forward(tokens).add(this.positionEmbedding.forward(positions));
    for (const block of this.blocks) x = block.forward(x);
    return this.lmHead.forward(this.finalNorm.forward(x));
  }

  /** Mean cross-entropy of predicting `targets` (batch, time) from `tokens` (batch, time). */
  loss(tokens: Tensor, targets: Tensor): Tensor {
    const logits = this.forward(tokens);
    return crossEntropy(logits.view(-1, logits.size(-1)), targets.reshape(-1));
  }
}
