/**
 * The CLIP-T metric of HyperDreamBooth §5 (after DreamBooth): the cosine similarity of a generated image's CLIP
 * image embedding (clip-image.ts) and the CLIP text embedding (CLIPTextModelWithProjection's text_embeds) of its
 * prompt with the identifier removed, as the paper scores prompt fidelity: "a sks face as a pencil sketch" is
 * compared as "a face as a pencil sketch" (the rare token means nothing to CLIP).
 *
 * The folder is the same CLIP folder as CLIP-I's (a full CLIPModel with its tokenizer files, as
 * openai/clip-vit-large-patch14 ships it).
 */
import { tensor } from "../../engine/creation.js";
import { tidy } from "../../engine/lifetime.js";
import type { Device, Tensor } from "../../engine/tensor.js";
import { CLIPTextModelWithProjection } from "../../models/clip/text-encoder.js";
import { CLIPTokenizer } from "../../models/clip/tokenizer.js";

/**
 * The prompt without the identifier word (case-insensitive, whole words only, with the space before it):
 * "a sks face as a pencil sketch" → "a face as a pencil sketch"; "sks, smiling" → ", smiling" trimmed.
 */
export function removeIdentifier(prompt: string, identifier: string): string {
  const word = identifier.trim();
  if (word === "") throw new Error("the identifier to remove from the prompt is empty");
  const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`(^|\\s+)${escaped}(?![\\p{L}\\p{N}_])`, "giu");
  return prompt.replace(pattern, "").replace(/\s+/g, " ").trim();
}

/** CLIP text embeddings of prompts: the text tower with its projection and the tokenizer, loaded once. */
export class ClipTextMetric {
  private constructor(readonly model: CLIPTextModelWithProjection, readonly tokenizer: CLIPTokenizer, readonly device: Device) {}

  static fromFolder(dir: string, options: { device?: Device } = {}): ClipTextMetric {
    const tokenizer = CLIPTokenizer.fromFolder(dir);
    const device = options.device ?? "cpu";
    return new ClipTextMetric(CLIPTextModelWithProjection.fromPretrained(dir, { device }), tokenizer, device);
  }

  /** [1, projection_dim] float32 text_embeds (on the CPU) of a text, padded and truncated to the model's length. */
  embeddings(text: string): Tensor {
    const maxLength = Math.min(this.tokenizer.modelMaxLength, this.model.config.max_position_embeddings);
    const { inputIds } = this.tokenizer.call([text], { padding: "max_length", truncation: true, maxLength });
    return tidy(() => {
      const ids = tensor(inputIds, { dtype: "int64", device: this.device });
      return this.model.forward(ids).textEmbeds.to({ dtype: "float32", device: "cpu" }).contiguous();
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
