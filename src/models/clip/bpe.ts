/**
 * CLIP's byte-level byte-pair encoding: the byte alphabet, the vocab.json / merges.txt readers and the merge loop.
 *
 * Why byte-level: BPE merges symbols, and CLIP's symbols are not Unicode characters but the UTF-8 *bytes* of the
 * text, each shown as one printable character (`bytesToUnicode`). 256 base symbols then cover every possible
 * string, so no prompt can ever contain an unknown character (an emoji or a CJK ideograph is simply 3–4 byte
 * symbols that merges may or may not join), while the vocabulary stays small. The byte → character table
 * avoids whitespace and control characters so that a symbol is always one visible character and the files
 * stay readable; this is GPT-2's table, which CLIP (and transformers' `bytes_to_unicode`) reuse verbatim.
 *
 * Why `</w>`: CLIP marks the *last* symbol of every pre-tokenised word with the suffix `</w>` ("end of word")
 * before merging, so "a" inside "cat" and the word "a" are different tokens ("a" vs "a</w>"). That is how
 * decoding knows where the spaces were.
 */

/** The GPT-2 / CLIP table: index = byte value, value = the printable character standing for it. */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b); // "!" .. "~"
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b); // "¡" .. "¬"
  for (let b = 0xae; b <= 0xff; b++) printable.push(b); // "®" .. "ÿ"
  const table: string[] = new Array<string>(256);
  for (const b of printable) table[b] = String.fromCharCode(b);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + next++);
  }
  return table;
})();

/** The inverse of BYTE_TO_UNICODE. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const utf8 = new TextEncoder();
// ignoreBOM keeps a decoded U+FEFF instead of silently dropping it; invalid sequences become U+FFFD exactly
// like Rust's String::from_utf8_lossy and Python's errors="replace" (both substitute maximal subparts).
const utf8Lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** The UTF-8 bytes of `text`, each as its byte-level symbol. */
export function byteEncode(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) out += BYTE_TO_UNICODE[b];
  return out;
}

/**
 * Token strings back to text, as `tokenizers`' ByteLevel decoder does it: a token made only of byte symbols
 * contributes those bytes, any other token (an added token spelled with characters outside the table)
 * contributes its own UTF-8; the bytes are then decoded with U+FFFD for invalid sequences (a truncated
 * multi-byte character, for example).
 */
export function byteDecode(tokens: readonly string[]): string {
  const bytes: number[] = [];
  for (const token of tokens) {
    const mapped: number[] = [];
    let allMapped = true;
    for (const ch of token) {
      const b = UNICODE_TO_BYTE.get(ch);
      if (b === undefined) {
        allMapped = false;
        break;
      }
      mapped.push(b);
    }
    if (allMapped) bytes.push(...mapped);
    else bytes.push(...utf8.encode(token));
  }
  return utf8Lossy.decode(new Uint8Array(bytes));
}

/** A merge rule: the two adjacent symbols that become one, in priority order (first = merged first). */
export type Merge = readonly [string, string];

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * Reads a vocab.json text (token string → id). `source` names the file in errors. Ids must be distinct
 * non-negative integers: a vocabulary with two tokens on one id cannot be decoded.
 */
export function parseVocab(text: string, source: string): Map<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${source}: expected a JSON object mapping token strings to ids, found ${describe(parsed)}`);
  }
  return vocabFromObject(parsed as Record<string, unknown>, source);
}

/** Validates a token → id object (vocab.json, or `model.vocab` of a tokenizer.json). */
export function vocabFromObject(object: Record<string, unknown>, source: string): Map<string, number> {
  const vocab = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(object)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
      throw new Error(`${source}: token ${JSON.stringify(token)} has id ${describe(id)}; ids must be non-negative integers`);
    }
    const other = byId.get(id);
    if (other !== undefined) {
      throw new Error(`${source}: tokens ${JSON.stringify(other)} and ${JSON.stringify(token)} both have id ${id}`);
    }
    byId.set(id, token);
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new Error(`${source}: the vocabulary is empty`);
  return vocab;
}

/** Which reader's quirks to follow; see parseMerges. */
export type MergesDialect = "fast" | "slow";

/** CLIP's merge count (49152 tokens - 256 bytes - 2 specials); transformers' Python CLIPTokenizer reads no more. */
export const SLOW_MAX_MERGES = 49152 - 256 - 2;

/**
 * Reads a merges.txt text: one rule per line, two symbols separated by one space, after a `#version` header.
 * - "fast" follows `tokenizers` (CLIPTokenizerFast, and transformers 5's CLIPTokenizer): lines starting with
 *   `#version` are skipped, every other line is a rule.
 * - "slow" follows transformers 4's Python CLIPTokenizer: `text.strip().split("\n")[1:48895]`, i.e. the first
 *   line is dropped whatever it holds (a file without a header loses its first rule) and at most 48,894 rules
 *   are read.
 * Blank lines are ignored. A line that is not two symbols is an error naming the file and line (`tokenizers`
 * refuses such files too; the Python reader would silently keep a broken rule).
 */
export function parseMerges(text: string, source: string, dialect: MergesDialect = "fast"): Merge[] {
  const merges: Merge[] = [];
  let lines = text.split("\n").map((line, index) => ({ line: line.replace(/\r$/, ""), number: index + 1 }));
  if (dialect === "slow") {
    const firstContent = lines.findIndex((l) => l.line.trim() !== "");
    lines = firstContent < 0 ? [] : lines.slice(firstContent + 1, firstContent + 1 + SLOW_MAX_MERGES);
  }
  for (const { line, number } of lines) {
    if (line.trim() === "" || (dialect === "fast" && line.startsWith("#version"))) continue;
    const parts = dialect === "slow" ? line.trim().split(/\s+/) : line.split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new Error(`${source}:${number}: expected two symbols separated by one space, found ${JSON.stringify(line)}`);
    }
    merges.push([parts[0] as string, parts[1] as string]);
  }
  return merges;
}

/**
 * The merge loop with CLIP's rules. Every rule's symbols and result must be vocabulary tokens (as `tokenizers`
 * requires when it loads a BPE model), so that a merged symbol always has an id.
 */
export class BytePairEncoder {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private static readonly CACHE_LIMIT = 50_000;

  /** `mergesSource` and `vocabSource` name the files in errors. */
  constructor(vocab: ReadonlyMap<string, number>, merges: readonly Merge[], mergesSource: string, vocabSource: string) {
    merges.forEach(([a, b], rank) => {
      for (const symbol of [a, b, a + b]) {
        if (!vocab.has(symbol)) {
          throw new Error(
            `${mergesSource}: merge ${rank + 1} ("${a} ${b}") needs ${JSON.stringify(symbol)}, which is not in the vocabulary (${vocabSource})`,
          );
        }
      }
      // A repeated rule keeps its last rank, as both Python's dict(zip(...)) and tokenizers' HashMap do.
      this.ranks.set(`${a} ${b}`, rank);
    });
  }

  /** Number of merge rules. */
  get size(): number {
    return this.ranks.size;
  }

  /**
   * Splits one pre-tokenised word (already byte-encoded) into tokens. This is transformers' `CLIPTokenizer.bpe`:
   * the last symbol gets `</w>`, then, repeatedly, the adjacent pair with the best (lowest) rank is merged
   * everywhere in the word, left to right, until no adjacent pair is a rule. `tokenizers` merges one pair at a
   * time from a priority queue instead; for merge lists produced by BPE training (every rule's parts exist
   * before it) the two give the same tokens. Results are cached, as both implementations do.
   */
  encodeWord(word: string): string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const symbols = Array.from(word);
    if (symbols.length === 0) return [];
    symbols[symbols.length - 1] += "</w>";
    let current = symbols;
    while (current.length > 1) {
      let best = Infinity;
      let first = "";
      let second = "";
      for (let i = 0; i + 1 < current.length; i++) {
        const rank = this.ranks.get(`${current[i]} ${current[i + 1]}`);
        if (rank !== undefined && rank < best) {
          best = rank;
          first = current[i] as string;
          second = current[i + 1] as string;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < current.length; i++) {
        if (current[i] === first && i + 1 < current.length && current[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(current[i] as string);
        }
      }
      current = merged;
    }
    if (this.cache.size >= BytePairEncoder.CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, current);
    return current;
  }
}
