// Captions: only vocabulary words, never an identifier token, never an attribute the style hides; the
// attributes they name are the identity's; deterministic in (id, styles, seed, nuisance seed).
import assert from "node:assert/strict";
import { test } from "node:test";
import { caption, describeIdentity, IDENTIFIER_TOKENS, identifierPrompt } from "../../src/miniworld/captions.js";
import { EYE_COLOURS, HAIR_COLOURS, identityFromId } from "../../src/miniworld/identity.js";
import { Random } from "../../src/miniworld/random.js";
import { STYLE_KINDS } from "../../src/miniworld/style.js";
import { STYLES, type StyleName } from "../../src/miniworld/styles.js";
import { vocabularyWords } from "../../src/miniworld/vocabulary.js";

/** A random valid combination of 0–3 styles (one per kind). */
function randomStyles(r: Random): StyleName[] {
  const kinds = STYLE_KINDS.filter(() => r.chance(0.3)).slice(0, 3);
  return kinds.map((kind) => r.pick(STYLES.filter((s) => s.kind === kind)).name as StyleName);
}

const COLOUR_WORDS = new Set([...Object.keys(HAIR_COLOURS), ...Object.keys(EYE_COLOURS)].flatMap((c) => c.split(" ")).filter((w) => w !== "dark" && w !== "light"));

test("captions use only vocabulary words and never an identifier token", () => {
  const words = new Set(vocabularyWords());
  const r = new Random(7);
  for (let i = 0; i < 3000; i++) {
    const id = r.int(70_000);
    const text = caption(id, randomStyles(r), r.int(1000), { nuisanceSeed: r.chance(0.5) ? r.int(100) : undefined });
    for (const word of text.replaceAll(",", "").split(" ")) {
      assert.ok(words.has(word), `'${word}' of "${text}" is not a vocabulary word`);
      assert.ok(!(IDENTIFIER_TOKENS as readonly string[]).includes(word), `"${text}" contains an identifier token`);
    }
  }
  for (const token of IDENTIFIER_TOKENS) assert.ok(words.has(token), `${token} must be in the vocabulary`);
});

test("captions end with the style phrases and name 1–3 attributes of the identity", () => {
  const text = caption(10, ["wearing-sunglasses", "on-the-beach", "pencil-sketch"], 3);
  assert.match(text, /, wearing sunglasses, on the beach, as a pencil sketch$/);
  assert.match(text, /^a (portrait|picture) of a /, "drawings are not called photos");
  for (let id = 0; id < 300; id++) {
    const phrases = describeIdentity(id).attributes.map((a) => a.phrase);
    const body = caption(id, undefined, id).replace(/^a [a-z ]*? of an? (young |middle aged )?(woman|man) with /, "");
    assert.ok(body !== caption(id, undefined, id), `caption of ${id} does not start with an opener and a noun`);
    const named = phrases.filter((p) => body.includes(p));
    assert.ok(named.length >= 1 && named.length <= 3, `caption "${caption(id)}" names ${named.length} attributes`);
  }
  const t = identityFromId(4);
  assert.ok(describeIdentity(4).attributes[0]!.phrase.includes(t.hair.colour) || t.hair.style === "bald");
});

test("captions never name what a style hides", () => {
  for (let id = 0; id < 400; id++) {
    for (const style of ["pencil-sketch", "black-and-white-photo", "as-a-statue", "sepia-photo"] as const) {
      const prompt = STYLES.find((s) => s.name === style)!.prompt;
      const text = caption(id, style, id).slice(0, -prompt.length);
      const colour = text.split(/[ ,]+/).find((w) => COLOUR_WORDS.has(w) || w === "skin");
      assert.equal(colour, undefined, `"${text}" names a colour under ${style}`);
    }
    assert.ok(!/ eyes/.test(caption(id, "wearing-sunglasses", id).replace(/(wide|close) set eyes/, "")), "eye colour behind sunglasses");
    assert.ok(!/beard|moustache|goatee|stubble/.test(caption(id, "as-a-child", id)), "facial hair on a child");
  }
});

test("captions are deterministic and vary with the seed", () => {
  assert.equal(caption(5, "smiling", 1, { nuisanceSeed: 2 }), caption(5, "smiling", 1, { nuisanceSeed: 2 }));
  const variants = new Set(Array.from({ length: 20 }, (_, seed) => caption(5, undefined, seed)));
  assert.ok(variants.size >= 5, `${variants.size} different captions from 20 seeds`);
  // The nuisance's expression is mentioned unless a style forces one.
  const smiling = Array.from({ length: 40 }, (_, s) => s).find((s) => caption(8, undefined, 0, { nuisanceSeed: s }).includes("smiling"));
  assert.ok(smiling !== undefined);
  assert.ok(!caption(8, "angry", 0, { nuisanceSeed: smiling }).includes("smiling"));
});

test("identifier prompts", () => {
  assert.equal(identifierPrompt(), "a sks face");
  assert.equal(identifierPrompt("zwx", ["pencil-sketch", "wearing-a-red-hat"]), "a zwx face wearing a red hat as a pencil sketch");
  assert.throws(() => caption(1, ["pop-art", "comic"]), /both of kind 'medium'/);
});
