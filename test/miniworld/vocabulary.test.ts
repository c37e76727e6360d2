// The mini-world vocabulary in SD's tokenizer format: every caption word and identifier is one token; our
// CLIPTokenizer and transformers' CLIPTokenizer (test/oracle/fixtures_miniworld_vocab.py) give the same ids on
// captions, prompts and every word; the committed fixture files are what our code writes today.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { IDENTIFIER_TOKENS } from "../../src/miniworld/captions.js";
import { buildVocabulary, MODEL_MAX_LENGTH, vocabularyWords, writeVocabulary } from "../../src/miniworld/vocabulary.js";
import { CLIPTokenizer } from "../../src/models/clip/tokenizer.js";
import { CAPTIONS_FILE, fixtureTexts, TOKENIZER_DIR } from "./export-fixtures.js";

const ORACLE = fileURLToPath(new URL("../../../test/fixtures/generated/miniworld_vocab/expected.json", import.meta.url));
const FILES = ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"];
const REGENERATE = "run: npx tsc -p tsconfig.json && node dist/test/miniworld/export-fixtures.js && .venv/bin/python test/oracle/generate.py miniworld_vocab";

interface Expected {
  texts: string[];
  ids: number[][];
  padded: number[][];
  wordTokens: Record<string, string[]>;
  identifierIds: Record<string, number>;
  bos: number;
  eos: number;
  pad: number;
  len: number;
}

test("the committed tokenizer files and texts are what the code writes now", () => {
  const dir = mkdtempSync(join(tmpdir(), "hdb-miniworld-vocab-"));
  writeVocabulary(dir);
  for (const file of FILES) {
    assert.equal(readFileSync(join(dir, file), "utf8"), readFileSync(join(TOKENIZER_DIR, file), "utf8"), `${file} is out of date; ${REGENERATE}`);
  }
  const committed = JSON.parse(readFileSync(CAPTIONS_FILE, "utf8")) as { texts: string[] };
  assert.deepEqual(committed.texts, fixtureTexts(), `captions.json is out of date; ${REGENERATE}`);
});

test("CLIP layout: 256 byte symbols, their </w> forms, merges, then the two special tokens", () => {
  const { vocab, merges, words } = buildVocabulary();
  const tokens = [...vocab.keys()];
  assert.equal(tokens[0], "!");
  assert.equal(tokens[256], "!</w>");
  assert.deepEqual(tokens.slice(-2), ["<|startoftext|>", "<|endoftext|>"]);
  assert.deepEqual([...vocab.values()], tokens.map((_, i) => i), "ids are 0..n-1 in order");
  for (const [a, b] of merges) assert.ok(vocab.has(a) && vocab.has(b) && vocab.has(a + b), `merge ${a} ${b}`);
  assert.deepEqual(words, vocabularyWords());
  assert.ok(words.length > 100 && words.every((w) => /^[a-z]+$/.test(w)));
  assert.deepEqual(buildVocabulary(), buildVocabulary(), "training is deterministic");
});

test("every word and identifier is a single token of our tokenizer", () => {
  const tokenizer = CLIPTokenizer.fromFolder(TOKENIZER_DIR);
  for (const word of vocabularyWords()) assert.deepEqual(tokenizer.tokenize(word), [`${word}</w>`], word);
  for (const token of IDENTIFIER_TOKENS) assert.deepEqual(tokenizer.tokenize(`a ${token} face`), ["a</w>", `${token}</w>`, "face</w>"]);
  assert.equal(tokenizer.modelMaxLength, MODEL_MAX_LENGTH);
});

test("our CLIPTokenizer equals transformers' on captions, prompts and every word", () => {
  if (!existsSync(ORACLE)) throw new Error(`${ORACLE} is missing; ${REGENERATE}`);
  const expected = JSON.parse(readFileSync(ORACLE, "utf8")) as Expected;
  assert.deepEqual(expected.texts, fixtureTexts(), `the oracle fixture is stale; ${REGENERATE}`);
  for (const flavor of ["fast", "slow"] as const) {
    const tokenizer = CLIPTokenizer.fromFolder(TOKENIZER_DIR, { flavor });
    assert.deepEqual([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId, tokenizer.vocabSize], [expected.bos, expected.eos, expected.pad, expected.len]);
    const ids = expected.texts.map((t) => tokenizer.encode(t));
    const wrong = ids.flatMap((row, i) => (JSON.stringify(row) === JSON.stringify(expected.ids[i]) ? [] : [expected.texts[i]]));
    assert.deepEqual(wrong, [], `${flavor}: ids differ from transformers on ${wrong.length} texts`);
    assert.deepEqual(tokenizer.call(expected.texts, { padding: "max_length", maxLength: MODEL_MAX_LENGTH, truncation: true }).inputIds, expected.padded);
    for (const [word, tokens] of Object.entries(expected.wordTokens)) assert.deepEqual(tokenizer.tokenize(word), tokens, word);
    for (const [token, id] of Object.entries(expected.identifierIds)) assert.equal(tokenizer.tokenToId(`${token}</w>`), id);
  }
});
