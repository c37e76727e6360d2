/**
 * Identities of the mini-world: a vector of categorical and continuous face traits derived from an integer id.
 *
 * `identityFromId(id)` is a pure function of (world seed, id): every id ≥ 0 is a person, so the world is
 * unbounded and any split is just a set of ids. Each trait group draws from its own hash stream (hair, eyes, ...),
 * so adding a trait later never reshuffles the others. Continuous traits are kept normalised to [0, 1] (or
 * [-1, 1] for signed ones) here; face-svg.ts maps them to view-box units. The ranges are wide enough that each
 * trait moves pixels at 64 × 64 (see test/miniworld/identity.test.ts for the distinguishability estimate), and
 * there are enough of them that people are not nameable by a few words: captions name a few attributes, the
 * rest (spacing, shapes, marks, exact shades) is only in the pixels.
 */
import { Random } from "./random.js";
import { along, luma, mix, scale, type Rgb } from "./svg.js";

/** The world seed that the shipped splits, samples and expected hashes use. */
export const WORLD_SEED = 5;

export type Sex = "woman" | "man";

export const HAIR_COLOURS = {
  black: [30, 26, 24],
  "dark brown": [62, 40, 27],
  brown: [104, 68, 40],
  "light brown": [150, 108, 66],
  auburn: [128, 50, 30],
  red: [184, 82, 36],
  "strawberry blonde": [212, 146, 96],
  blonde: [224, 188, 112],
  "platinum blonde": [240, 226, 176],
  grey: [152, 150, 148],
  white: [238, 238, 240],
  blue: [52, 96, 200],
  pink: [232, 112, 172],
  green: [60, 164, 92],
  purple: [124, 62, 176],
} as const satisfies Record<string, Rgb>;
export type HairColour = keyof typeof HAIR_COLOURS;

const HAIR_COLOUR_WEIGHTS: readonly (readonly [HairColour, number])[] = [
  ["black", 14], ["dark brown", 14], ["brown", 13], ["light brown", 9], ["auburn", 6], ["red", 6],
  ["strawberry blonde", 4], ["blonde", 9], ["platinum blonde", 4], ["grey", 5], ["white", 3],
  ["blue", 3], ["pink", 3], ["green", 3], ["purple", 3],
];

export const HAIR_STYLES = [
  "bald", "buzz cut", "short", "side parting", "quiff", "spiky", "mohawk", "pixie cut", "bob", "fringe",
  "long", "wavy", "curly", "afro", "bun", "ponytail",
] as const;
export type HairStyle = (typeof HAIR_STYLES)[number];

const STYLE_WEIGHTS: Record<Sex, readonly (readonly [HairStyle, number])[]> = {
  man: [
    ["bald", 6], ["buzz cut", 10], ["short", 14], ["side parting", 12], ["quiff", 9], ["spiky", 7], ["mohawk", 4],
    ["pixie cut", 1], ["bob", 2], ["fringe", 5], ["long", 6], ["wavy", 4], ["curly", 8], ["afro", 5], ["bun", 3],
    ["ponytail", 4],
  ],
  woman: [
    ["bald", 1], ["buzz cut", 2], ["short", 5], ["side parting", 4], ["quiff", 2], ["spiky", 2], ["mohawk", 1],
    ["pixie cut", 8], ["bob", 12], ["fringe", 10], ["long", 15], ["wavy", 13], ["curly", 10], ["afro", 6],
    ["bun", 8], ["ponytail", 9],
  ],
};

export const EYE_COLOURS = {
  "dark brown": [58, 34, 20],
  brown: [112, 66, 32],
  hazel: [132, 108, 52],
  amber: [182, 124, 38],
  green: [64, 136, 72],
  blue: [56, 112, 196],
  "light blue": [126, 176, 226],
  grey: [122, 136, 148],
} as const satisfies Record<string, Rgb>;
export type EyeColour = keyof typeof EYE_COLOURS;

const EYE_COLOUR_WEIGHTS: readonly (readonly [EyeColour, number])[] = [
  ["dark brown", 22], ["brown", 20], ["hazel", 12], ["amber", 6], ["green", 12], ["blue", 14], ["light blue", 7],
  ["grey", 7],
];

export const FACIAL_HAIR = ["none", "stubble", "moustache", "goatee", "beard", "full beard"] as const;
export type FacialHair = (typeof FACIAL_HAIR)[number];

/** Skin from lightest (t = 0) to darkest (t = 1). */
const SKIN_ANCHORS: readonly Rgb[] = [
  [252, 226, 210], [242, 204, 174], [228, 184, 148], [206, 156, 114], [176, 124, 86], [140, 94, 62],
  [104, 68, 44], [72, 47, 32],
];

/** A mole: position in face-relative units (u: −1 left edge … 1 right edge, v: −1 top … 1 chin), radius 0–1. */
export interface Mole {
  u: number;
  v: number;
  size: number;
}

export interface Identity {
  id: number;
  worldSeed: number;
  sex: Sex;
  /** 0 youngest adult … 1 middle-aged: deeper lines, a little grey in the brows. */
  age: number;
  face: {
    /** Half-width and half-height of the head, 0–1 each (mapped to 19–24.5 and 25.5–31 view units). */
    width: number;
    length: number;
    /** Jaw-corner width and chin width relative to the face, 0 narrow … 1 wide. */
    jaw: number;
    chin: number;
    /** Cheekbone prominence 0–1. */
    cheekbones: number;
  };
  skin: { tone: number; undertone: number; rgb: Rgb };
  hair: {
    colour: HairColour;
    rgb: Rgb;
    style: HairStyle;
    /** Volume 0–1 (height above the skull), length 0–1 (for long styles), parting −1 left … 1 right. */
    volume: number;
    length: number;
    parting: number;
    /** Hairline height 0 low … 1 high (receding). */
    hairline: number;
  };
  eyes: {
    colour: EyeColour;
    rgb: Rgb;
    size: number;
    spacing: number;
    /** Vertical position 0 high … 1 low, tilt −1 … 1 (outer corners down … up), openness 0–1. */
    height: number;
    tilt: number;
    openness: number;
    /** Dark upper lashes / lid line 0–1. */
    lashes: number;
  };
  brows: { thickness: number; angle: number; arch: number; length: number; gap: number; rgb: Rgb };
  nose: { length: number; width: number; tip: number; bridge: number };
  mouth: { width: number; upperLip: number; lowerLip: number; height: number; rgb: Rgb };
  ears: { size: number; protrusion: number };
  facialHair: { kind: FacialHair; rgb: Rgb; density: number };
  marks: {
    /** 0 = none; else freckle density 0.3–1 and the seed that places them. */
    freckles: number;
    freckleSeed: number;
    moles: Mole[];
    /** Rosy cheeks 0–1. */
    blush: number;
  };
}

function skinColour(tone: number, undertone: number): Rgb {
  const base = along(SKIN_ANCHORS, tone);
  // Warm undertones lean yellow-olive, cool ones pink; by at most ~8 levels per channel.
  return undertone >= 0
    ? mix(base, [base[0] + 6, base[1] + 6, base[2] - 10], undertone)
    : mix(base, [base[0] + 8, base[1] - 6, base[2] + 2], -undertone);
}

/**
 * Brows take the hair's colour, darkened, and then darkened further until they stand out from the skin by
 * ~45 levels of brightness: fair brows on fair skin would vanish at 64 × 64 and take a trait with them.
 */
function browColour(hair: Rgb, skin: Rgb): Rgb {
  const dark: Rgb = [34, 24, 20];
  let brow = scale(mix(hair, dark, 0.35), 0.9);
  for (let t = 0.15; luma(skin) - luma(brow) < 45 && t <= 1; t += 0.15) brow = mix(brow, dark, t);
  return brow;
}

/** The identity of `id` in the world `worldSeed`: a pure function, the same on every machine. */
export function identityFromId(id: number, worldSeed: number = WORLD_SEED): Identity {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`identity ids are integers ≥ 0, got ${id}`);
  const stream = (name: string): Random => Random.of(name, worldSeed, id);

  const base = stream("base");
  const sex: Sex = base.chance(0.5) ? "woman" : "man";
  const age = base.next();

  const f = stream("face");
  const face = {
    width: f.next(),
    length: f.next(),
    jaw: Math.min(1, Math.max(0, f.next() + (sex === "man" ? 0.15 : -0.15))),
    chin: f.next(),
    cheekbones: f.next(),
  };

  const s = stream("skin");
  const tone = s.next();
  const undertone = s.uniform(-1, 1);
  const skin = { tone, undertone, rgb: skinColour(tone, undertone) };

  const h = stream("hair");
  const colour = h.weighted(HAIR_COLOUR_WEIGHTS);
  const style = h.weighted(STYLE_WEIGHTS[sex]);
  const hairShade = h.uniform(0.88, 1.12);
  const hair = {
    colour,
    rgb: scale(HAIR_COLOURS[colour], hairShade),
    style,
    volume: h.next(),
    length: h.next(),
    parting: h.uniform(-1, 1),
    hairline: h.next() * (sex === "man" ? 1 : 0.6),
  };

  const e = stream("eyes");
  const eyeColour = e.weighted(EYE_COLOUR_WEIGHTS);
  const eyes = {
    colour: eyeColour,
    rgb: scale(EYE_COLOURS[eyeColour], e.uniform(0.9, 1.1)),
    size: e.next(),
    spacing: e.next(),
    height: e.next(),
    tilt: e.uniform(-1, 1),
    openness: e.next(),
    lashes: e.next() * (sex === "woman" ? 1 : 0.5),
  };

  const b = stream("brows");
  const browBase = hair.style === "bald" || colour === "blue" || colour === "pink" || colour === "green" || colour === "purple"
    ? along([[40, 30, 24], [110, 80, 50], [170, 140, 100]], b.next()) // natural brows under dyed hair
    : HAIR_COLOURS[colour];
  const brows = {
    thickness: b.next() * (sex === "man" ? 1 : 0.75) + (sex === "man" ? 0 : 0.05),
    angle: b.uniform(-1, 1),
    arch: b.next(),
    length: b.next(),
    gap: b.next(),
    rgb: browColour(browBase, skin.rgb),
  };

  const n = stream("nose");
  const nose = { length: n.next(), width: n.next(), tip: n.next(), bridge: n.next() };

  const m = stream("mouth");
  const lipRed = m.next();
  const mouth = {
    width: m.next(),
    upperLip: m.next(),
    lowerLip: m.next(),
    height: m.next(),
    rgb: mix(scale(skin.rgb, 0.82), [196, 70, 82], 0.25 + 0.35 * lipRed + (sex === "woman" ? 0.1 : 0)),
  };

  const r = stream("ears");
  const ears = { size: r.next(), protrusion: r.next() };

  const fh = stream("facial hair");
  const kind: FacialHair = sex === "woman"
    ? "none"
    : fh.weighted([["none", 40], ["stubble", 16], ["moustache", 10], ["goatee", 10], ["beard", 14], ["full beard", 10]]);
  const facialHair = { kind, rgb: scale(browBase, 0.95), density: fh.uniform(0.6, 1) };

  const k = stream("marks");
  const freckles = k.chance(0.22) ? k.uniform(0.3, 1) : 0;
  const freckleSeed = k.nextUint32();
  const moleCount = k.weighted([[0, 55], [1, 30], [2, 12], [3, 3]] as const);
  const moles: Mole[] = [];
  for (let i = 0; i < moleCount; i++) {
    moles.push({ u: k.uniform(-0.8, 0.8), v: k.uniform(-0.5, 0.85), size: k.next() });
  }
  const blush = k.chance(0.3) ? k.uniform(0.3, 1) : 0;

  return {
    id, worldSeed, sex, age, face, skin, hair, eyes, brows, nose, mouth, ears, facialHair,
    marks: { freckles, freckleSeed, moles, blush },
  };
}
