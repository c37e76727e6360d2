/** Neural-network building blocks (torch.nn): Module, parameters, layers, containers, init, clipping. */
export { Module, type UnaryModule, type LoadStateDictResult } from "./module.js";
export { Parameter, Buffer, ModuleTensor } from "./parameter.js";
export { Linear, type LinearAdapter, type LinearOptions } from "./linear.js";
export { Conv2d, type Conv2dOptions } from "./conv.js";
export { GroupNorm, LayerNorm, type GroupNormOptions, type LayerNormOptions } from "./norm.js";
export { Embedding, type EmbeddingOptions } from "./embedding.js";
export { SiLU, GELU, Dropout, Identity } from "./activation.js";
export { Sequential, ModuleList } from "./container.js";
export { clipGradNorm_ } from "./clip-grad.js";
export * as init from "./init.js";
