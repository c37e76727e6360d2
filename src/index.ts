/** hyperdreambooth: the public library API. */
export * as engine from "./engine/index.js";
