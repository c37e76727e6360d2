/**
 * The CLIP tokenizer of Stable Diffusion's text encoder, in plain TypeScript: prompt → token ids (and back),
 * identical to transformers'.
 *
 * Pipeline (fast flavour, the default; see tokenizer-text.ts for both flavours):
 *   1. added/special tokens ("<|startoftext|>", "<|endoftext|>", SD2's "!") are cut out of the text first;
 *   2. the rest is normalised (NFC, whitespace runs → " ", lowercase) and split into words with CLIP's
 *      pattern (letter runs, single digits, punctuation runs, the contractions 's 't 're 've 'm 'll 'd);
 *   3. each word's UTF-8 bytes become byte-level symbols (bpe.ts explains why), the last one suffixed `</w>`,
 *      and CLIP's merges join them into vocabulary tokens ("sks" → "sks</w>");
 *   4. `<|startoftext|>` (49406 in real CLIP) and `<|endoftext|>` (49407) wrap the ids; batches are truncated
 *      to model_max_length (77) keeping both, and padded with the pad token (SD1: <|endoftext|>, SD2: "!" = 0).
 *
 * Which transformers: `flavor: "fast"` reproduces transformers 5's `CLIPTokenizer` (= `CLIPTokenizerFast`, the
 * Rust `tokenizers` backend diffusers loads today); `flavor: "slow"` reproduces transformers 4's Python
 * `CLIPTokenizer` without ftfy (what SD pipelines ran with transformers 4). They differ only on unusual text:
 * control/format characters, CJK ideographs, a final Greek sigma, mixed-case special tokens.
 */
import { byteDecode, byteEncode, BytePairEncoder, type MergesDialect } from "./bpe.js";
import { folderFiles, readTokenizerFiles, type AddedTokenFlags, type TokenizerData, type TokenizerFiles } from "./tokenizer-files.js";
import {
  fastNormalize,
  fastPreTokenize,
  pyStrip,
  slowPreTokenize,
  splitFast,
  splitSlow,
  type AddedToken,
} from "./tokenizer-text.js";

export type { AddedToken } from "./tokenizer-text.js";
export type { AddedTokenFlags, TokenizerData, TokenizerFiles } from "./tokenizer-files.js";

/** "fast": transformers 5 CLIPTokenizer / CLIPTokenizerFast (default); "slow": transformers 4 Python CLIPTokenizer. */
export type TokenizerFlavor = "fast" | "slow";

export interface CLIPTokenizerOptions {
  flavor?: TokenizerFlavor;
}

export interface CallOptions {
  /** "max_length": pad to maxLength (default model_max_length); "longest" (or true): to the longest in the batch. */
  padding?: "max_length" | "longest" | boolean;
  /** Length for padding and truncation; default model_max_length. */
  maxLength?: number;
  /**
   * Cut each sequence to maxLength, keeping the start and end tokens. Default: false, except that (as in
   * transformers) giving maxLength without padding implies truncation.
   */
  truncation?: boolean;
}

export interface BatchEncoding {
  inputIds: number[][];
  /** 1 for real tokens (start and end included), 0 for padding. */
  attentionMask: number[][];
}

export interface DecodeOptions {
  /** Leave out special tokens (start, end, pad: for SD2 every "!"). Default false, as in transformers. */
  skipSpecialTokens?: boolean;
}

const STARTOFTEXT = "<|startoftext|>";
const ENDOFTEXT = "<|endoftext|>";

function flagsOf(token: AddedTokenFlags | string, forceSpecial: boolean): AddedTokenFlags {
  const flags: AddedTokenFlags =
    typeof token === "string"
      ? { content: token, special: true, normalized: false, lstrip: false, rstrip: false, singleWord: false }
      : { ...token };
  if (forceSpecial) flags.special = true;
  return flags;
}

export class CLIPTokenizer {
  readonly flavor: TokenizerFlavor;
  /** Number of ids: the vocabulary plus added tokens outside it (transformers' `len(tokenizer)`; 49408 for CLIP). */
  readonly vocabSize: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  /** 77 for CLIP; Infinity when the files do not say (then padding to max length needs maxLength). */
  readonly modelMaxLength: number;

  private readonly vocab: ReadonlyMap<string, number>;
  private readonly idToTokenMap = new Map<number, string>();
  private readonly bpe: BytePairEncoder;
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly addedById = new Map<number, AddedToken>();
  private readonly rawTokens: AddedToken[] = [];
  private readonly normalizedTokens: AddedToken[] = [];
  private readonly normalizedPatterns: string[] = [];

  private constructor(data: TokenizerData, flavor: TokenizerFlavor) {
    const source = data.source ?? "tokenizer";
    this.flavor = flavor;
    this.vocab = data.vocab;
    for (const [token, id] of data.vocab) this.idToTokenMap.set(id, token);
    this.bpe = new BytePairEncoder(data.vocab, data.merges, data.mergesSource ?? "merges", source);
    let nextId = 0;
    for (const id of data.vocab.values()) nextId = Math.max(nextId, id + 1);
    const register = (token: AddedTokenFlags | string, forceSpecial: boolean): AddedToken => {
      const flags = flagsOf(token, forceSpecial);
      if (flags.content === "") throw new Error(`${source}: an added token has empty content`);
      const existing = this.addedByContent.get(flags.content);
      const id = existing?.id ?? data.vocab.get(flags.content) ?? nextId++;
      const added: AddedToken = { ...flags, id };
      // A token registered again keeps its place and id but takes the new flags (tokenizers' add_tokens).
      this.addedByContent.set(flags.content, added);
      this.addedById.set(id, added);
      return added;
    };
    for (const token of data.addedTokens ?? []) register(token, false);
    const bos = register(data.bosToken ?? STARTOFTEXT, true);
    const eos = register(data.eosToken ?? ENDOFTEXT, true);
    const unk = register(data.unkToken ?? ENDOFTEXT, true);
    const pad = register(data.padToken ?? ENDOFTEXT, true);
    [this.bosTokenId, this.eosTokenId, this.unkTokenId, this.padTokenId] = [bos.id, eos.id, unk.id, pad.id];
    [this.bosToken, this.eosToken, this.unkToken, this.padToken] = [bos.content, eos.content, unk.content, pad.content];
    for (const token of this.addedByContent.values()) {
      this.idToTokenMap.set(token.id, token.content);
      if (flavor === "fast" && token.normalized) {
        this.normalizedTokens.push(token);
        this.normalizedPatterns.push(fastNormalize(token.content));
      } else {
        this.rawTokens.push(token);
      }
    }
    this.vocabSize = this.idToTokenMap.size;
    const maxLength = data.modelMaxLength ?? Infinity;
    if (!(maxLength > 0)) throw new Error(`${source}: model_max_length must be positive, found ${maxLength}`);
    this.modelMaxLength = maxLength;
  }

  /** From a diffusers/transformers `tokenizer/` folder (vocab.json + merges.txt, or tokenizer.json, + configs). */
  static fromFolder(dir: string, options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    return CLIPTokenizer.fromFiles(folderFiles(dir), options);
  }

  /** From explicit file paths: `{vocab, merges}` or `{tokenizerJson}`, optionally specialTokensMap / tokenizerConfig. */
  static fromFiles(files: TokenizerFiles, options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    const flavor = options.flavor ?? "fast";
    return new CLIPTokenizer(readTokenizerFiles(files, flavor satisfies MergesDialect), flavor);
  }

  /** From in-memory data (merges already parsed; see parseVocab / parseMerges in bpe.ts). */
  static fromData(data: TokenizerData, options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    return new CLIPTokenizer(data, options.flavor ?? "fast");
  }

  /** The id of a token string (vocabulary or added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.vocab.get(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.idToTokenMap.get(id);
  }

  private wordTokens(word: string, out: { token: string; id: number }[]): void {
    for (const token of this.bpe.encodeWord(byteEncode(word))) {
      out.push({ token, id: this.addedByContent.get(token)?.id ?? this.vocab.get(token) ?? this.unkTokenId });
    }
  }

  private pieces(text: string): { token: string; id: number }[] {
    const out: { token: string; id: number }[] = [];
    if (this.flavor === "slow") {
      for (const segment of splitSlow(text, this.rawTokens)) {
        if (segment.token) {
          out.push({ token: segment.token.content, id: segment.token.id });
          continue;
        }
        for (const word of slowPreTokenize(segment.text)) {
          // The Python tokenizer's BPE cache starts with these two, so they stay whole (no </w>).
          if (word === STARTOFTEXT || word === ENDOFTEXT) out.push({ token: word, id: this.tokenToId(word) ?? this.unkTokenId });
          else this.wordTokens(word, out);
        }
      }
      return out;
    }
    const rawPatterns = this.rawTokens.map((t) => t.content);
    for (const raw of splitFast(text, this.rawTokens, rawPatterns)) {
      if (raw.token) {
        out.push({ token: raw.token.content, id: raw.token.id });
        continue;
      }
      for (const segment of splitFast(fastNormalize(raw.text), this.normalizedTokens, this.normalizedPatterns)) {
        if (segment.token) out.push({ token: segment.token.content, id: segment.token.id });
        else for (const word of fastPreTokenize(segment.text)) this.wordTokens(word, out);
      }
    }
    return out;
  }

  /** The token strings of `text`, without start/end tokens ("a sks face" → ["a</w>", "sks</w>", "face</w>"]). */
  tokenize(text: string): string[] {
    return this.pieces(text).map((p) => p.token);
  }

  /** The ids of `text` with start and end tokens, no padding, no truncation (transformers' `encode`). */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = this.pieces(text).map((p) => p.id);
    return options.addSpecialTokens === false ? ids : [this.bosTokenId, ...ids, this.eosTokenId];
  }

  /**
   * A batch, as transformers' `tokenizer(texts, padding=…, max_length=…, truncation=…)`: each text is encoded
   * with start/end tokens; with truncation the content is cut to maxLength - 2 so both survive; padding goes on
   * the right with the pad token and a 0 in the attention mask.
   */
  call(texts: string | readonly string[], options: CallOptions = {}): BatchEncoding {
    const list = typeof texts === "string" ? [texts] : texts;
    const padding = options.padding === true ? "longest" : (options.padding ?? false);
    const truncation = options.truncation ?? (options.maxLength !== undefined && padding === false);
    const limit = options.maxLength ?? this.modelMaxLength;
    if (options.maxLength !== undefined && !(Number.isInteger(options.maxLength) && options.maxLength > 0)) {
      throw new Error(`maxLength must be a positive integer, found ${options.maxLength}`);
    }
    if ((truncation || padding === "max_length") && !Number.isFinite(limit)) {
      throw new Error("this tokenizer has no model_max_length: pass maxLength to truncate or pad to max length");
    }
    if (truncation && limit < 2) throw new Error(`maxLength ${limit} leaves no room for the start and end tokens`);
    const sequences = list.map((text) => {
      const ids = this.encode(text, { addSpecialTokens: false });
      const kept = truncation ? ids.slice(0, limit - 2) : ids;
      return [this.bosTokenId, ...kept, this.eosTokenId];
    });
    const target =
      padding === "max_length" ? limit : padding === "longest" ? sequences.reduce((m, s) => Math.max(m, s.length), 0) : 0;
    return {
      inputIds: sequences.map((s) => (s.length < target ? [...s, ...new Array<number>(target - s.length).fill(this.padTokenId)] : s)),
      attentionMask: sequences.map((s) =>
        s.length < target ? [...new Array<number>(s.length).fill(1), ...new Array<number>(target - s.length).fill(0)] : new Array<number>(s.length).fill(1),
      ),
    };
  }

  /**
   * Ids back to text, as transformers' CLIPTokenizer.decode: tokens are joined, their bytes decoded, every
   * `</w>` becomes a space and the ends are stripped ("hello , world !": word boundaries survive, the original
   * spacing and case do not). Unknown ids are skipped, as `tokenizers` does. Both flavours decode this way.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added?.special && options.skipSpecialTokens) continue;
      const token = added?.content ?? this.idToTokenMap.get(id);
      if (token !== undefined) tokens.push(token);
    }
    return pyStrip(byteDecode(tokens).replaceAll("</w>", " "));
  }
}
