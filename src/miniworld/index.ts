/**
 * The mini-world: a deterministic procedural face world (identities, per-image nuisance, styles, captions, a
 * CLIP-format vocabulary and identity splits) to train and evaluate a small Stable-Diffusion-architecture model
 * and HyperDreamBooth on, at 64 × 64, on CPUs.
 */
export { WORLD_SEED, identityFromId, HAIR_COLOURS, HAIR_STYLES, EYE_COLOURS, FACIAL_HAIR } from "./identity.js";
export type { Identity, HairColour, HairStyle, EyeColour, FacialHair, Sex, Mole } from "./identity.js";
export { CANONICAL_NUISANCE, EXPRESSIONS, nuisanceFor, withoutPose } from "./nuisance.js";
export type { Expression, Nuisance } from "./nuisance.js";
export { faceSvg, identitySvg, renderFace, renderFaces, renderIdentity } from "./render.js";
export type { RenderOptions, RenderRequest } from "./render.js";
export { STYLES, STYLE_NAMES, resolveStyles, styleByName } from "./styles.js";
export type { StyleName } from "./styles.js";
export type { Style, StyleKind, HiddenAttribute } from "./style.js";
export { IDENTIFIER_TOKENS, caption, describeIdentity, facePrompt, identifierPrompt } from "./captions.js";
export type { Attribute, CaptionOptions, IdentityDescription } from "./captions.js";
export { buildVocabulary, vocabularyWords, writeVocabulary, MODEL_MAX_LENGTH } from "./vocabulary.js";
export type { Vocabulary } from "./vocabulary.js";
export { SPLITS, SPLIT_NAMES, splitIds, splitOf } from "./splits.js";
export type { SplitName } from "./splits.js";
export { CELL_COUNT, CELL_TRAITS, measureDistinguishability, traitCell } from "./distinguishability.js";
export type { DistinguishabilityOptions, DistinguishabilityReport } from "./distinguishability.js";
