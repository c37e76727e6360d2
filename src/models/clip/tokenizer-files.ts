/**
 * Reading a CLIP tokenizer from disk the way transformers 5's `CLIPTokenizer.from_pretrained` does, including
 * its rules for which special tokens exist and how each is matched (the part that decides, for example, that
 * Stable Diffusion 2's pad token "!" is a special token, so every "!" in a prompt becomes id 0).
 *
 * Files (a diffusers `tokenizer/` folder): vocab.json + merges.txt, or a `tokenizers` tokenizer.json (preferred
 * when both exist, as transformers does); optional special_tokens_map.json and tokenizer_config.json.
 *
 * Special-token resolution, as in `PreTrainedTokenizerBase._from_pretrained` + `TokenizersBackend`:
 * 1. Start from tokenizer_config.json. If it has `added_tokens_decoder`, those tokens are the added tokens and
 *    special_tokens_map.json is ignored; otherwise special_tokens_map.json's entries override the config's,
 *    and a tokenizer.json's `added_tokens` become added tokens.
 * 2. bos/eos/unk/pad default to CLIPTokenizer's "<|startoftext|>", "<|endoftext|>" ×3. A token given as a plain
 *    string is special and not normalised; an AddedToken object keeps its flags, unless an added token with the
 *    same content exists, whose flags win.
 * 3. Added tokens are registered in order (added tokens, then bos, eos, unk, pad); a later token with the same
 *    content replaces the earlier one's flags. So in SD 1.5's files, eos "<|endoftext|>" (normalized: true) is
 *    overridden by pad "<|endoftext|>" (a string: normalized false).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseMerges, parseVocab, vocabFromObject, type Merge, type MergesDialect } from "./bpe.js";
import type { AddedToken } from "./tokenizer-text.js";

/** Flags of an added token before it has an id. */
export type AddedTokenFlags = Omit<AddedToken, "id">;

/** Everything a CLIPTokenizer is built from. */
export interface TokenizerData {
  vocab: ReadonlyMap<string, number>;
  merges: readonly Merge[];
  /** Added tokens in registration order; those with equal content: the last one's flags win. */
  addedTokens?: readonly (AddedTokenFlags | string)[];
  bosToken?: AddedTokenFlags | string;
  eosToken?: AddedTokenFlags | string;
  unkToken?: AddedTokenFlags | string;
  padToken?: AddedTokenFlags | string;
  /** transformers' model_max_length (77 for CLIP); Infinity when the files do not say. */
  modelMaxLength?: number;
  /** Name the vocabulary and merges files in error messages. */
  source?: string;
  mergesSource?: string;
}

/** Paths of the files of one tokenizer: vocab + merges, or tokenizerJson; the others optional. */
export interface TokenizerFiles {
  vocab?: string;
  merges?: string;
  tokenizerJson?: string;
  specialTokensMap?: string;
  tokenizerConfig?: string;
}

type Json = Record<string, unknown>;

function readText(path: string, what: string): string {
  if (!existsSync(path)) throw new Error(`${what} not found: ${path}`);
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${path}: cannot read ${what} (${(error as Error).message})`);
  }
}

function readJsonObject(path: string, what: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path, what));
  } catch (error) {
    if ((error as Error).message.includes(path)) throw error;
    throw new Error(`${path}: ${what} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path}: ${what} must be a JSON object`);
  }
  return parsed as Json;
}

/** An AddedToken as JSON (`{"content": …, "normalized": …}`, with or without `"__type": "AddedToken"`). */
function addedTokenFromJson(value: unknown, source: string, special?: boolean): AddedTokenFlags | string {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null || typeof (value as Json).content !== "string") {
    throw new Error(`${source}: expected a token string or an object with a "content" string, found ${JSON.stringify(value)}`);
  }
  const v = value as Json;
  return {
    content: v.content as string,
    special: special ?? v.special === true,
    normalized: v.normalized === undefined ? !(special ?? v.special === true) : v.normalized === true,
    lstrip: v.lstrip === true,
    rstrip: v.rstrip === true,
    singleWord: v.single_word === true,
  };
}

const SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "pad_token"] as const;
const DEFAULTS = { bos_token: "<|startoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>", pad_token: "<|endoftext|>" };

function contentOf(token: AddedTokenFlags | string): string {
  return typeof token === "string" ? token : token.content;
}

/** Reads tokenizer.json's BPE model and added tokens. */
function readTokenizerJson(path: string) {
  const json = readJsonObject(path, "tokenizer.json");
  const model = json.model as Json | undefined;
  if (typeof model !== "object" || model === null) throw new Error(`${path}: no "model" object`);
  if (model.type !== undefined && model.type !== "BPE") throw new Error(`${path}: model type ${JSON.stringify(model.type)} is not BPE`);
  if (model.end_of_word_suffix !== "</w>") {
    throw new Error(`${path}: end_of_word_suffix is ${JSON.stringify(model.end_of_word_suffix)}, a CLIP tokenizer uses "</w>"`);
  }
  if (typeof model.vocab !== "object" || model.vocab === null || Array.isArray(model.vocab)) {
    throw new Error(`${path}: model.vocab must be an object mapping tokens to ids`);
  }
  const vocab = vocabFromObject(model.vocab as Json, `${path} (model.vocab)`);
  if (!Array.isArray(model.merges)) throw new Error(`${path}: model.merges must be an array`);
  const merges: Merge[] = [];
  model.merges.forEach((merge: unknown, i: number) => {
    if (typeof merge === "string") merges.push(...parseMerges(merge, `${path} (model.merges[${i}])`, "fast"));
    else if (Array.isArray(merge) && merge.length === 2 && merge.every((s) => typeof s === "string" && s !== "")) {
      merges.push([merge[0] as string, merge[1] as string]);
    } else throw new Error(`${path}: model.merges[${i}] is not a pair of symbols: ${JSON.stringify(merge)}`);
  });
  const added = Array.isArray(json.added_tokens)
    ? json.added_tokens.map((t: unknown, i: number) => addedTokenFromJson(t, `${path} (added_tokens[${i}])`))
    : [];
  return { vocab, merges, added };
}

/** Reads the files and applies transformers' special-token rules (see the module comment). */
export function readTokenizerFiles(files: TokenizerFiles, dialect: MergesDialect): TokenizerData {
  let vocab: Map<string, number>;
  let merges: Merge[];
  let jsonAdded: (AddedTokenFlags | string)[] = [];
  if (files.tokenizerJson !== undefined) {
    // A plain list of rules: no header line to drop, whatever the dialect.
    ({ vocab, merges, added: jsonAdded } = readTokenizerJson(files.tokenizerJson));
  } else {
    if (files.vocab === undefined || files.merges === undefined) {
      throw new Error("a CLIP tokenizer needs vocab.json and merges.txt, or a tokenizer.json");
    }
    vocab = parseVocab(readText(files.vocab, "vocab.json"), files.vocab);
    merges = parseMerges(readText(files.merges, "merges.txt"), files.merges, dialect);
  }
  const config: Json = files.tokenizerConfig !== undefined ? readJsonObject(files.tokenizerConfig, "tokenizer_config.json") : {};
  const configSource = files.tokenizerConfig ?? "tokenizer_config.json";
  let added: (AddedTokenFlags | string)[] = [];
  // Each special token's value, and the file it came from (for errors).
  const values = new Map<string, { value: unknown; source: string }>();
  for (const key of SPECIAL_KEYS) {
    if (config[key] !== undefined && config[key] !== null) values.set(key, { value: config[key], source: `${configSource} (${key})` });
  }
  if (config.added_tokens_decoder !== undefined) {
    const decoder = config.added_tokens_decoder;
    if (typeof decoder !== "object" || decoder === null || Array.isArray(decoder)) {
      throw new Error(`${configSource}: added_tokens_decoder must be an object mapping ids to tokens`);
    }
    added = Object.entries(decoder as Json)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([id, t]) => addedTokenFromJson(t, `${configSource} (added_tokens_decoder.${id})`));
  } else {
    if (files.specialTokensMap !== undefined) {
      const map = readJsonObject(files.specialTokensMap, "special_tokens_map.json");
      for (const key of SPECIAL_KEYS) {
        const value = map[key];
        if (value === undefined || value === null) continue;
        values.set(key, {
          value: typeof value === "object" ? { ...(value as Json), special: true } : value,
          source: `${files.specialTokensMap} (${key})`,
        });
      }
    }
    added = jsonAdded;
  }
  const byContent = new Map(added.map((t) => [contentOf(t), t]));
  const special: Record<string, AddedTokenFlags | string> = {};
  for (const key of SPECIAL_KEYS) {
    const { value, source } = values.get(key) ?? { value: DEFAULTS[key], source: key };
    const token = addedTokenFromJson(value, source, typeof value === "object" ? true : undefined);
    special[key] = byContent.get(contentOf(token)) ?? token;
  }
  const maxLength = config.model_max_length;
  return {
    vocab,
    merges,
    addedTokens: added,
    bosToken: special.bos_token,
    eosToken: special.eos_token,
    unkToken: special.unk_token,
    padToken: special.pad_token,
    modelMaxLength: typeof maxLength === "number" && maxLength < 1e20 ? maxLength : Infinity,
    source: files.tokenizerJson ?? files.vocab,
    mergesSource: files.tokenizerJson ?? files.merges,
  };
}

/** The files of a diffusers/transformers tokenizer folder; tokenizer.json wins over vocab.json + merges.txt. */
export function folderFiles(dir: string): TokenizerFiles {
  if (!existsSync(dir)) throw new Error(`tokenizer folder not found: ${dir}`);
  const at = (name: string) => (existsSync(join(dir, name)) ? join(dir, name) : undefined);
  const files: TokenizerFiles = {
    specialTokensMap: at("special_tokens_map.json"),
    tokenizerConfig: at("tokenizer_config.json"),
  };
  const tokenizerJson = at("tokenizer.json");
  if (tokenizerJson) return { ...files, tokenizerJson };
  const vocab = at("vocab.json");
  const merges = at("merges.txt");
  if (!vocab || !merges) {
    const missing = [!vocab && "vocab.json", !merges && "merges.txt"].filter(Boolean).join(" and ");
    throw new Error(`${dir}: ${missing} not found (a CLIP tokenizer folder holds vocab.json and merges.txt, or tokenizer.json)`);
  }
  return { ...files, vocab, merges };
}
