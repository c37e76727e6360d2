/**
 * The evaluation's scores in the mini-world, the roles of HyperDreamBooth's Table 1 (§5):
 *
 *   identity          Face Rec: cosine of the identity network's embeddings, image vs the person's reference photo
 *   style             CLIP-T: 1 when the prompt-fidelity network names the prompted style ("photo" for none), else 0
 *   imageSimilarity   DINO / CLIP-I: cosine of the prompt-fidelity network's pooled features (its encoder's output
 *                     after the SiLU its heads read), image vs the reference photo
 *
 * Why that encoder for the image–image roles, and why it is fair. DINO and CLIP-I are general image encoders that
 * none of the compared methods was trained against; they reward what a subject looks like overall (colours, hair,
 * layout), not only who it is. Here that is the fidelity network's encoder: trained on the world's renders alone to
 * tell 31 styles and 15 hair colours apart, never on a generated image, never on a held-out identity, and read by no
 * method. It is deliberately NOT the image encoder the HyperNetwork was trained with (models/miniworld/encoder, a
 * CLIP vision tower): the HyperNetwork's predictions are a function of that encoder's features, so scoring with it
 * would favour the methods that use it (ours, Only Hyper, k = 1) by construction. Nor is it the identity network,
 * which would repeat the identity score. Like DINO it is a feature similarity, not an identity judgement: a stylised
 * image lies farther from the plain reference photo even when it is the right person.
 *
 * Every score is computed from the 8-bit image as saved (the PNG's pixels), so rescoring a cached image gives the very
 * numbers the first run wrote.
 */
import { noGrad, tidy, type Tensor } from "../../engine/index.js";
import { imagesToTensor, type RgbImage } from "../../pipeline/images.js";
import { styleFollowsPrompt, type PromptFidelityNetwork } from "../fidelity-network.js";
import { l2Normalize, type IdentityNetwork } from "../identity-network.js";
import type { EntryScores } from "./cache.js";

export class Scorer {
  /** Per identity: the reference photo's identity embedding and image features, (1, D) each. */
  readonly #references = new Map<number, { identity: Tensor; features: Tensor }>();

  constructor(
    readonly identityNetwork: IdentityNetwork,
    readonly fidelityNetwork: PromptFidelityNetwork,
    /** The metric networks' digest and the reference photos' recipe: recorded with every score. */
    readonly fingerprint: string,
  ) {}

  /** The image–image encoder: the fidelity network's pooled features, unit length. */
  imageFeatures(images: Tensor): Tensor {
    return noGrad(() => tidy(() => l2Normalize(this.fidelityNetwork.encoder.forward(images).silu())));
  }

  /** Registers a person's reference photo (what every method personalised from). */
  addReference(identity: number, photo: RgbImage): void {
    if (this.#references.has(identity)) return;
    const pixels = imagesToTensor([photo]);
    try {
      this.#references.set(identity, { identity: noGrad(() => this.identityNetwork.embed(pixels)), features: this.imageFeatures(pixels) });
    } finally {
      pixels.dispose();
    }
  }

  /** The scores of one image of `identity` made for a prompt that asks for `expectedStyle`. */
  score(identity: number, image: RgbImage, expectedStyle: string): EntryScores {
    const reference = this.#references.get(identity);
    if (reference === undefined) throw new Error(`Scorer: no reference photo of identity ${identity}`);
    const pixels = imagesToTensor([image]);
    try {
      const [identityScore, imageSimilarity] = noGrad(() => tidy(() => [
        this.identityNetwork.embed(pixels).mul(reference.identity).sum().item(),
        this.imageFeatures(pixels).mul(reference.features).sum().item(),
      ]));
      const predictedStyle = this.fidelityNetwork.classify(pixels).styles[0]!;
      return { identity: identityScore!, imageSimilarity: imageSimilarity!, style: styleFollowsPrompt(predictedStyle, expectedStyle) ? 1 : 0, predictedStyle };
    } finally {
      pixels.dispose();
    }
  }

  dispose(): void {
    for (const { identity, features } of this.#references.values()) {
      identity.dispose();
      features.dispose();
    }
    this.#references.clear();
  }
}
