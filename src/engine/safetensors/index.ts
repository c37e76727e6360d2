/**
 * safetensors: reading and writing the Hugging Face tensor file format, compatible with the reference
 * Python package (huggingface/safetensors 0.8.0) in both directions.
 *
 *  - loadSafetensors / readSafetensorsHeader / saveSafetensors: files (one copy on load, atomic save);
 *  - parseSafetensors / serializeSafetensors: whole files in memory;
 *  - SafetensorsError: every malformed-input problem, naming the file and tensor.
 */
export { SafetensorsError, MAX_HEADER_BYTES, type SafetensorsEntry } from "./format.js";
export {
  loadSafetensors, parseSafetensors, readSafetensorsHeader,
  type LoadOptions, type LoadedSafetensors, type SafetensorsHeader,
} from "./read.js";
export { saveSafetensors, serializeSafetensors, type TensorCollection } from "./write.js";
