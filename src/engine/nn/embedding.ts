/** Embedding: a lookup table of vectors indexed by integers (torch.nn.Embedding), initialised N(0, 1). */
import type { TensorOptions } from "../creation.js";
import { op } from "../dispatch.js";
import { noGrad } from "../autograd.js";
import { call, type Tensor } from "../tensor.js";
import { normal_ } from "./init.js";
import { Module } from "./module.js";
import { Parameter } from "./parameter.js";

export interface EmbeddingOptions extends Omit<TensorOptions, "requiresGrad"> {
  /** A row that is initialised to zeros and receives no gradient (e.g. a padding token). */
  paddingIdx?: number;
}

const embeddingOp = op("aten::embedding");

export class Embedding extends Module {
  /** (numEmbeddings, embeddingDim). */
  readonly weight: Parameter;
  /** The padding row as a non-negative index, or -1 for none (ATen's convention). */
  readonly paddingIdx: number;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, options: EmbeddingOptions = {}) {
    super();
    const { paddingIdx, ...tensorOptions } = options;
    if (paddingIdx !== undefined && (paddingIdx >= numEmbeddings || paddingIdx < -numEmbeddings)) {
      throw new RangeError(`Embedding: paddingIdx ${paddingIdx} is outside [-${numEmbeddings}, ${numEmbeddings})`);
    }
    this.paddingIdx = paddingIdx === undefined ? -1 : paddingIdx < 0 ? paddingIdx + numEmbeddings : paddingIdx;
    this.weight = this.registerParameter("weight", Parameter.empty([numEmbeddings, embeddingDim], tensorOptions));
    this.resetParameters();
  }

  resetParameters(): void {
    normal_(this.weight);
    if (this.paddingIdx >= 0) {
      noGrad(() => {
        using row = this.weight.select(0, this.paddingIdx);
        row.zero_();
      });
    }
  }

  /** Rows of the table for integer `indices` of any shape: output shape is indices.shape + [embeddingDim]. */
  forward(indices: Tensor): Tensor {
    return call(embeddingOp, this.weight, indices, this.paddingIdx);
  }
}
