/**
 * Words for faces: the attributes of an identity as phrases, and captions that name a few of them plus the
 * expression and the styles ("a photo of a woman with long wavy red hair and green eyes, smiling, on the beach").
 *
 * Captions are built only from the phrase tables below, so vocabulary.ts can list every word they can contain
 * and make each a single token. They name SOME attributes, never all (spacing, exact shades, mole positions
 * stay in the pixels), never the identifier tokens, and never an attribute a style hides or changes (no eye
 * colour behind sunglasses, no colours in a pencil sketch).
 */
import { identityFromId, WORLD_SEED, type HairStyle, type Identity } from "./identity.js";
import { nuisanceFor, type Expression } from "./nuisance.js";
import { Random } from "./random.js";
import type { HiddenAttribute, Style } from "./style.js";
import { resolveStyles, type StyleName } from "./styles.js";

/** Rare words that are single tokens of the vocabulary and never occur in captions: "a sks face". */
export const IDENTIFIER_TOKENS = ["sks", "zwx", "qpv", "vtk", "bqj"] as const;

/** Hair phrases by style; `{c}` is the colour (left out when a style hides colour). */
const HAIR_PHRASES: Record<HairStyle, string> = {
  bald: "a bald head",
  "buzz cut": "a {c} buzz cut",
  short: "short {c} hair",
  "side parting": "short {c} hair with a side parting",
  quiff: "a {c} quiff",
  spiky: "spiky {c} hair",
  mohawk: "a {c} mohawk",
  "pixie cut": "a {c} pixie cut",
  bob: "a {c} bob",
  fringe: "{c} hair with a fringe",
  long: "long straight {c} hair",
  wavy: "long wavy {c} hair",
  curly: "curly {c} hair",
  afro: "a {c} afro",
  bun: "{c} hair in a bun",
  ponytail: "a {c} ponytail",
};

const SKIN_WORDS = ["pale", "fair", "olive", "tan", "brown", "dark"] as const;
const FACIAL_HAIR_PHRASES = { none: "", stubble: "stubble", moustache: "a moustache", goatee: "a goatee", beard: "a beard", "full beard": "a full beard" } as const;
const EXPRESSION_PHRASES: Record<Expression, string> = {
  neutral: "", smile: "smiling", surprised: "looking surprised", open: "with an open mouth", angry: "looking angry",
};
const PHOTO_OPENERS = ["a photo of", "a portrait photo of", "a close up photo of", "a headshot of"] as const;
const ART_OPENERS = ["a portrait of", "a picture of"] as const;
/** Words outside the tables that prompts for this world use ("a sks face", "a person"). */
export const EXTRA_WORDS = ["face", "person", "people", "portrait", "image", "of", "the", "in", "on", "at", "as", "a", "an"] as const;

/** Fixes "a" before a vowel: "a auburn afro" → "an auburn afro". */
function articles(text: string): string {
  return text.replace(/\ba (?=[aeiou])/g, "an ");
}

/** One nameable attribute of an identity. */
export interface Attribute {
  kind: "hair" | "eyes" | "skin" | "facial hair" | "face" | "mark" | "feature";
  phrase: string;
}

/** The identity in words: its noun and the attributes a caption may pick from. */
export interface IdentityDescription {
  id: number;
  /** "woman" / "man", with "young" or "middle aged" at the ends of the age range. */
  noun: string;
  attributes: Attribute[];
}

function extreme(value: number, high: string, low: string): string | undefined {
  return value >= 0.85 ? high : value <= 0.15 ? low : undefined;
}

/** The attributes of an identity, minus what `hidden` says cannot be seen. */
export function describeIdentity(id: number | Identity, hidden: readonly HiddenAttribute[] = [], worldSeed = WORLD_SEED): IdentityDescription {
  const t = typeof id === "number" ? identityFromId(id, worldSeed) : id;
  const noun = (t.age < 0.15 ? "young " : t.age > 0.85 ? "middle aged " : "") + t.sex;
  const attributes: Attribute[] = [];
  const colour = hidden.includes("hair colour") ? "" : t.hair.colour;
  attributes.push({ kind: "hair", phrase: articles(HAIR_PHRASES[t.hair.style].replace("{c}", colour).replace(/ +/g, " ").trim()) });
  if (!hidden.includes("eye colour")) {
    const size = extreme(t.eyes.size, "big ", "small ") ?? "";
    attributes.push({ kind: "eyes", phrase: `${size}${t.eyes.colour} eyes` });
  }
  if (!hidden.includes("skin")) attributes.push({ kind: "skin", phrase: `${SKIN_WORDS[Math.min(5, Math.floor(t.skin.tone * 6))]} skin` });
  if (t.facialHair.kind !== "none" && !hidden.includes("facial hair")) attributes.push({ kind: "facial hair", phrase: FACIAL_HAIR_PHRASES[t.facialHair.kind] });
  const f = t.face;
  const shape = f.length - f.width > 0.45 ? "a long face" : f.width - f.length > 0.45 ? "a wide face"
    : f.jaw > 0.85 ? "a square jaw" : f.chin < 0.15 && f.jaw < 0.35 ? "a pointed chin" : f.width > 0.55 && f.length < 0.45 ? "a round face" : "an oval face";
  attributes.push({ kind: "face", phrase: shape });
  if (t.marks.freckles > 0) attributes.push({ kind: "mark", phrase: "freckles" });
  if (t.marks.moles.length > 0) attributes.push({ kind: "mark", phrase: t.marks.moles.length === 1 ? "a mole" : "moles" });
  if (t.marks.blush > 0.5) attributes.push({ kind: "mark", phrase: "rosy cheeks" });
  const features = [
    extreme(t.eyes.spacing, "wide set eyes", "close set eyes"),
    extreme(t.brows.thickness, "thick eyebrows", "thin eyebrows"),
    extreme(t.nose.length, "a long nose", "a short nose"),
    extreme(t.nose.width, "a wide nose", "a narrow nose"),
    extreme(t.mouth.width, "a wide mouth", "a small mouth"),
    extreme((t.mouth.upperLip + t.mouth.lowerLip) / 2, "full lips", "thin lips"),
    extreme(t.ears.size, "big ears", "small ears"),
  ];
  for (const phrase of features) if (phrase) attributes.push({ kind: "feature", phrase });
  return { id: t.id, noun, attributes };
}

const ATTRIBUTE_WEIGHT: Record<Attribute["kind"], number> = { hair: 4, eyes: 2, skin: 2, "facial hair": 2, face: 1, mark: 1, feature: 1 };

export interface CaptionOptions {
  /** Mention the expression of this photo (see nuisance.ts); omitted: the canonical neutral photo. */
  nuisanceSeed?: number;
  worldSeed?: number;
}

function stylesOf(style: StyleName | readonly StyleName[] | undefined): Style[] {
  return resolveStyles(style === undefined ? [] : typeof style === "string" ? [style] : style);
}

/** "a", "a and b", "a, b and c". */
function listing(phrases: readonly string[]): string {
  return phrases.length === 1 ? phrases[0]! : `${phrases.slice(0, -1).join(", ")} and ${phrases.at(-1)!}`;
}

/** Whether the styles draw a picture rather than a photo (a medium other than the photographic ones). */
function isArtistic(styles: readonly Style[]): boolean {
  return styles.some((s) => s.kind === "medium" && s.name !== "black-and-white-photo" && s.name !== "sepia-photo");
}

/** The style phrases of a caption, in reading order: expression, accessory, age, transformation, scene, medium. */
const PHRASE_ORDER: readonly Style["kind"][] = ["expression", "accessory", "age", "transformation", "scene", "medium"];

/**
 * A caption for image (`id`, `style`, nuisance): the noun, one to three attributes chosen by `seed`, the
 * expression, then each style's canonical phrase.
 */
export function caption(id: number, style?: StyleName | readonly StyleName[], seed = 0, options: CaptionOptions = {}): string {
  const worldSeed = options.worldSeed ?? WORLD_SEED;
  const styles = stylesOf(style);
  const hidden = styles.flatMap((s) => s.hides ?? []);
  const description = describeIdentity(id, hidden, worldSeed);
  const r = Random.of("caption", worldSeed, id, seed, options.nuisanceSeed ?? 0, styles.length);
  const pool = description.attributes.slice();
  const count = Math.min(pool.length, r.weighted([[1, 3], [2, 4.5], [3, 2.5]] as const));
  const chosen: string[] = [];
  for (let i = 0; i < count; i++) {
    const pick = r.weighted(pool.map((a, k) => [k, ATTRIBUTE_WEIGHT[a.kind]] as const));
    chosen.push(pool[pick]!.phrase);
    pool.splice(pick, 1);
  }
  const opener = r.pick(isArtistic(styles) ? ART_OPENERS : PHOTO_OPENERS);
  const parts = [articles(`${opener} a ${description.noun} with ${listing(chosen)}`)];
  const forced = styles.some((s) => s.kind === "expression");
  if (!forced && options.nuisanceSeed !== undefined) {
    const phrase = EXPRESSION_PHRASES[nuisanceFor(id, options.nuisanceSeed, worldSeed).expression];
    if (phrase) parts.push(phrase);
  }
  for (const kind of PHRASE_ORDER) for (const s of styles) if (s.kind === kind) parts.push(s.prompt);
  return parts.join(", ");
}

/**
 * A caption naming EVERY visible attribute of the person ("a photo of a woman with purple hair in a bun, green
 * eyes, pale skin, …"): the most the world's words say about a face. Training captions name one to three; this is
 * the hypernetwork's description teacher (hypernetwork/recipe.ts), not a training caption of the base model.
 */
export function fullDescription(id: number, style?: StyleName | readonly StyleName[], worldSeed = WORLD_SEED): string {
  const styles = stylesOf(style);
  const description = describeIdentity(id, styles.flatMap((s) => s.hides ?? []), worldSeed);
  const listed = listing(description.attributes.map((a) => a.phrase));
  return [articles(`${isArtistic(styles) ? ART_OPENERS[0] : PHOTO_OPENERS[0]} a ${description.noun} with ${listed}`), ...stylePhrases(style)].join(", ");
}

/** The personalisation prompt: "a sks face", optionally with a style ("a sks face as a pencil sketch"). */
export function identifierPrompt(token: string = IDENTIFIER_TOKENS[0], style?: StyleName | readonly StyleName[]): string {
  return [`a ${token} face`, ...stylePhrases(style)].join(" ");
}

/** The generic prompt without an identifier: "a face", "a face as a pencil sketch" (short training captions). */
export function facePrompt(style?: StyleName | readonly StyleName[]): string {
  return ["a face", ...stylePhrases(style)].join(" ");
}

/** The styles' prompt phrases in reading order. */
function stylePhrases(style: StyleName | readonly StyleName[] | undefined): string[] {
  return stylesOf(style).sort((a, b) => PHRASE_ORDER.indexOf(a.kind) - PHRASE_ORDER.indexOf(b.kind)).map((s) => s.prompt);
}

/** Every phrase a caption can be built from (for the vocabulary). */
export function captionPhrases(): string[] {
  const phrases: string[] = [...PHOTO_OPENERS, ...ART_OPENERS, ...EXTRA_WORDS, "with", "and", "young", "middle aged", "woman", "man", "skin", "eyes"];
  phrases.push(...Object.values(HAIR_PHRASES).map((p) => p.replace("{c}", "")), ...Object.values(FACIAL_HAIR_PHRASES), ...Object.values(EXPRESSION_PHRASES), ...SKIN_WORDS);
  phrases.push("big", "small", "a long face", "a wide face", "a square jaw", "a pointed chin", "a round face", "an oval face", "freckles", "a mole", "moles", "rosy cheeks");
  phrases.push("wide set eyes", "close set eyes", "thick eyebrows", "thin eyebrows", "a long nose", "a short nose", "a wide nose", "a narrow nose");
  phrases.push("a wide mouth", "a small mouth", "full lips", "thin lips", "big ears", "small ears");
  return phrases;
}
