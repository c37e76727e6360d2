/**
 * The mini-world's text vocabulary in Stable Diffusion's tokenizer format (CLIP byte-level BPE): vocab.json,
 * merges.txt, special_tokens_map.json and tokenizer_config.json, as in an SD 1.x `tokenizer/` folder.
 *
 * Layout as in openai/clip-vit-large-patch14: the 256 byte symbols, their 256 `</w>` (end-of-word) forms, one
 * token per merge in merge order, then <|startoftext|> and <|endoftext|>. The merges come from plain BPE
 * training over every word a caption or style prompt can contain, plus the identifier tokens (sks, ...), run
 * until each word is one symbol: so every such word is a single token, which our CLIPTokenizer and
 * transformers' CLIPTokenizer both reproduce (test/oracle/fixtures_miniworld_vocab.py checks the latter).
 * Training is deterministic: the most frequent adjacent pair first, ties to the smallest pair.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { BYTE_TO_UNICODE, byteEncode } from "../models/clip/bpe.js";
import { writeFileAtomic } from "../util/atomic.js";
import { captionPhrases, IDENTIFIER_TOKENS } from "./captions.js";
import { EYE_COLOURS, HAIR_COLOURS } from "./identity.js";
import { STYLES } from "./styles.js";

export const STARTOFTEXT = "<|startoftext|>";
export const ENDOFTEXT = "<|endoftext|>";
/** CLIP's context length. */
export const MODEL_MAX_LENGTH = 77;

export interface Vocabulary {
  /** token → id, in id order. */
  vocab: Map<string, number>;
  merges: [string, string][];
  /** The words that are single tokens. */
  words: string[];
}

/** Every word of captions, style prompts and identifier prompts, sorted. */
export function vocabularyWords(): string[] {
  const phrases = [...captionPhrases(), ...Object.keys(HAIR_COLOURS), ...Object.keys(EYE_COLOURS), ...STYLES.map((s) => s.prompt), ...IDENTIFIER_TOKENS];
  const words = new Set<string>();
  for (const phrase of phrases) {
    for (const word of phrase.split(" ")) {
      if (word === "") continue;
      if (!/^[a-z]+$/.test(word)) throw new Error(`vocabulary word ${JSON.stringify(word)} (from ${JSON.stringify(phrase)}) must be lowercase letters only`);
      words.add(word);
    }
  }
  return [...words].sort();
}

/** CLIP's base symbol order: printable bytes first ("!".."~", "¡".."¬", "®".."ÿ"), then the remapped ones. */
function baseSymbols(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const rest: number[] = [];
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) rest.push(b);
  return [...printable, ...rest].map((b) => BYTE_TO_UNICODE[b]!);
}

/** BPE training over `words` until every word is one symbol. */
export function buildVocabulary(words: readonly string[] = vocabularyWords()): Vocabulary {
  const segmented = words.map((word) => {
    const symbols = Array.from(byteEncode(word));
    symbols[symbols.length - 1] += "</w>";
    return symbols;
  });
  const merges: [string, string][] = [];
  for (;;) {
    const counts = new Map<string, number>();
    for (const symbols of segmented) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    if (counts.size === 0) break;
    let bestKey = "";
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    const [a, b] = bestKey.split(" ") as [string, string];
    merges.push([a, b]);
    for (let w = 0; w < segmented.length; w++) {
      const symbols = segmented[w]!;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else {
          merged.push(symbols[i]!);
        }
      }
      segmented[w] = merged;
    }
  }
  const base = baseSymbols();
  const tokens = [...base, ...base.map((s) => `${s}</w>`), ...merges.map(([a, b]) => a + b), STARTOFTEXT, ENDOFTEXT];
  const vocab = new Map<string, number>();
  // Two different pairs can spell the same token ("ab"+"c", "a"+"bc"): it gets one id, at its first merge.
  for (const token of tokens) if (!vocab.has(token)) vocab.set(token, vocab.size);
  return { vocab, merges, words: [...words] };
}

function writeAtomic(file: string, text: string): void {
  try {
    writeFileAtomic(file, text);
  } catch (error) {
    throw new Error(`cannot write ${file}: ${(error as Error).message}`);
  }
}

function addedToken(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: true, rstrip: false, single_word: false };
}

/**
 * Writes the tokenizer folder (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json) as in
 * Stable Diffusion 1.x: pad token <|endoftext|>, model_max_length 77. Each file is written atomically.
 */
export function writeVocabulary(dir: string, vocabulary: Vocabulary = buildVocabulary()): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(path.join(dir, "vocab.json"), JSON.stringify(Object.fromEntries(vocabulary.vocab)));
  writeAtomic(path.join(dir, "merges.txt"), `#version: 0.2\n${vocabulary.merges.map(([a, b]) => `${a} ${b}\n`).join("")}`);
  const special = { bos_token: addedToken(STARTOFTEXT), eos_token: addedToken(ENDOFTEXT), pad_token: ENDOFTEXT, unk_token: addedToken(ENDOFTEXT) };
  writeAtomic(path.join(dir, "special_tokens_map.json"), `${JSON.stringify(special, null, 2)}\n`);
  const config = {
    add_prefix_space: false, bos_token: { __type: "AddedToken", ...addedToken(STARTOFTEXT) }, do_lower_case: true,
    eos_token: { __type: "AddedToken", ...addedToken(ENDOFTEXT) }, errors: "replace", model_max_length: MODEL_MAX_LENGTH,
    pad_token: ENDOFTEXT, tokenizer_class: "CLIPTokenizer", unk_token: { __type: "AddedToken", ...addedToken(ENDOFTEXT) },
  };
  writeAtomic(path.join(dir, "tokenizer_config.json"), `${JSON.stringify(config, null, 2)}\n`);
}
