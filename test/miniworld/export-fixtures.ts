// Writes the mini-world files that the Python oracle reads (test/oracle/fixtures_miniworld_vocab.py): the
// tokenizer folder our code writes and a set of captions and prompts. Run after changing captions, styles or
// the vocabulary:  npx tsc -p tsconfig.json && node dist/test/miniworld/export-fixtures.js
// vocabulary.test.ts fails with that instruction when the committed files are out of date.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { caption, IDENTIFIER_TOKENS, identifierPrompt } from "../../src/miniworld/captions.js";
import { STYLE_NAMES, STYLES, type StyleName } from "../../src/miniworld/styles.js";
import { vocabularyWords, writeVocabulary } from "../../src/miniworld/vocabulary.js";

export const FIXTURES = fileURLToPath(new URL("../../../test/miniworld/fixtures/", import.meta.url));
export const TOKENIZER_DIR = join(FIXTURES, "tokenizer");
export const CAPTIONS_FILE = join(FIXTURES, "captions.json");

/** Captions of 300 images (every style, some combined, with and without nuisance), prompts, every word. */
export function fixtureTexts(): string[] {
  const texts: string[] = [];
  for (let i = 0; i < 300; i++) {
    const style: StyleName[] = i % 5 === 0 ? [] : [STYLE_NAMES[i % STYLE_NAMES.length]!];
    const kinds = new Set(style.map((name) => STYLES.find((s) => s.name === name)!.kind));
    if (i % 7 === 0 && !kinds.has("accessory")) style.push("wearing-sunglasses");
    if (i % 11 === 0 && !kinds.has("scene")) style.push("in-space");
    texts.push(caption(i * 37, style, i, { nuisanceSeed: i % 3 === 0 ? undefined : i }));
  }
  for (const token of IDENTIFIER_TOKENS) texts.push(identifierPrompt(token), identifierPrompt(token, ["pencil-sketch", "wearing-a-red-hat"]));
  texts.push(...STYLES.map((s) => s.prompt), vocabularyWords().join(" "), ...vocabularyWords());
  return texts;
}

export function exportFixtures(): void {
  mkdirSync(FIXTURES, { recursive: true });
  writeVocabulary(TOKENIZER_DIR);
  writeFileSync(CAPTIONS_FILE, `${JSON.stringify({ texts: fixtureTexts(), words: vocabularyWords(), identifiers: IDENTIFIER_TOKENS }, null, 1)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  exportFixtures();
  process.stdout.write(`wrote ${TOKENIZER_DIR} and ${CAPTIONS_FILE}\n`);
}
