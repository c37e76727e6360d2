/**
 * Text → words for the CLIP tokenizer: cleaning, lowercasing, splitting, and finding added (special) tokens,
 * in the two ways transformers does it.
 *
 * "fast" is transformers 5's `CLIPTokenizer` (= `CLIPTokenizerFast`, the Rust `tokenizers` pipeline that
 * diffusers loads): normaliser NFC → `\s+` → " " → lowercase (per character), then a Split pre-tokeniser with
 * CLIP's pattern followed by a ByteLevel pre-tokeniser (which re-splits each piece with GPT-2's pattern, so a
 * literal "<|endoftext|>" that was not matched as a special token becomes "<|", "endoftext", "|>").
 *
 * "slow" is transformers 4's Python `CLIPTokenizer` as it runs without ftfy installed (the usual case): a BERT
 * `BasicTokenizer(strip_accents=False, do_split_on_punc=False)` that drops control and format characters
 * (category C: zero-width spaces, BOMs, soft hyphens...), turns Unicode spaces into " ", puts spaces around
 * CJK ideographs (so "日本語" is three words), applies NFC and lowercases each whitespace-separated word with
 * Python's `str.lower` (which knows the Greek final sigma); then `regex.findall` with CLIP's pattern,
 * case-insensitively. The two disagree on exactly those inputs; everywhere else they give the same words.
 *
 * Unicode tables: JavaScript's (Node's ICU) are used for letters/numbers/categories. The references carry older
 * tables (onig in `tokenizers`, Python's unicodedata 14), so characters assigned in recent Unicode versions
 * can be classified differently; every character in the test corpus agrees.
 */

/** Whitespace as onig's `\s` (and Rust regex's): Unicode White_Space. JavaScript's `\s` differs (U+FEFF, U+0085). */
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WS_RUN = new RegExp(`[${WS}]+`, "gu");
const CONTRACTIONS = "'s|'t|'re|'ve|'m|'ll|'d";
/** CLIP's pattern, `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`. */
const FAST_SPLIT = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|${CONTRACTIONS}|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`, "gu");
/** GPT-2's pattern, which `tokenizers`' ByteLevel pre-tokeniser applies (use_regex defaults to true). */
const GPT2_SPLIT = new RegExp(
  `${CONTRACTIONS}| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  "gu",
);
/** CLIP's pattern as the Python tokenizer compiles it (`regex`, IGNORECASE: "'ſ" matches `'s`). */
const SLOW_SPLIT = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
/** Python's str.isspace() characters: what `str.split()` and `str.strip()` split on and strip. */
// The information separators U+001C..U+001F are whitespace to Python: matching them is the point.
// eslint-disable-next-line no-control-regex
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;
// eslint-disable-next-line no-control-regex
const PY_SPACE_AT_ENDS = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu;
const CATEGORY_C = /^\p{C}$/u;
const CATEGORY_ZS = /^\p{Zs}$/u;

/**
 * The fast tokenizer's normaliser: NFC, every whitespace run to one space, then lowercase one character at a
 * time (Rust's `char::to_lowercase`, which never produces the final sigma "ς", unlike `String.toLowerCase`).
 */
export function fastNormalize(text: string): string {
  const collapsed = text.normalize("NFC").replace(WS_RUN, " ");
  let out = "";
  for (const ch of collapsed) out += ch.toLowerCase();
  return out;
}

/** The fast tokenizer's pre-tokenisers on normalised text: the words that go to BPE (not yet byte-encoded). */
export function fastPreTokenize(normalized: string): string[] {
  const words: string[] = [];
  for (const piece of normalized.match(FAST_SPLIT) ?? []) {
    for (const word of piece.match(GPT2_SPLIT) ?? []) words.push(word);
  }
  return words;
}

function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** The slow tokenizer's BasicTokenizer: cleaned, lowercased words joined by single spaces. */
export function slowBasicClean(text: string): string {
  let cleaned = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (ch === "\t" || ch === "\n" || ch === "\r" || ch === " " || CATEGORY_ZS.test(ch)) cleaned += " ";
    else if (cp === 0 || cp === 0xfffd || CATEGORY_C.test(ch)) continue;
    else if (isCjkIdeograph(cp)) cleaned += ` ${ch} `;
    else cleaned += ch;
  }
  return cleaned
    .normalize("NFC")
    .split(PY_SPACE)
    .filter((word) => word !== "")
    .map((word) => word.toLowerCase())
    .join(" ");
}

/** The slow tokenizer's words for one piece of text (not yet byte-encoded). */
export function slowPreTokenize(text: string): string[] {
  return slowBasicClean(text).match(SLOW_SPLIT) ?? [];
}

/** Python's `str.strip()` (no argument). */
export function pyStrip(text: string): string {
  return text.replace(PY_SPACE_AT_ENDS, "");
}

/** An added token as `tokenizers` and transformers describe one (AddedToken). */
export interface AddedToken {
  content: string;
  id: number;
  /** Skipped by decode(…, {skipSpecialTokens: true}); bos/eos/unk/pad always are. */
  special: boolean;
  /** Fast tokenizer: matched in the normalised (lowercased…) text rather than the raw text. */
  normalized: boolean;
  /** Swallows the whitespace on its left / right. */
  lstrip: boolean;
  rstrip: boolean;
  /** Only matches as a whole word. */
  singleWord: boolean;
}

/** A run of text, or an added token found in it. */
export type Segment = { text: string; token?: undefined } | { text: string; token: AddedToken };

const WORD_AT_END = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;
const WORD_AT_START = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const SPACE_AT_END = new RegExp(`[${WS}]*$`, "u");
const SPACE_AT_START = new RegExp(`^[${WS}]*`, "u");

/** The leftmost, then longest, token whose content occurs in `text` at or after `from`. */
function nextMatch(text: string, from: number, tokens: readonly AddedToken[], patterns: readonly string[]) {
  let best: { start: number; end: number; token: AddedToken } | undefined;
  tokens.forEach((token, i) => {
    const pattern = patterns[i] as string;
    if (pattern === "") return;
    const start = text.indexOf(pattern, from);
    if (start < 0) return;
    const end = start + pattern.length;
    if (!best || start < best.start || (start === best.start && end > best.end)) best = { start, end, token };
  });
  return best;
}

/**
 * `tokenizers`' AddedVocabulary.find_matches: cuts `text` at every occurrence of one of `tokens` (given as
 * `patterns`: their contents, normalised for the normalised pass), leftmost-longest, honouring single_word
 * (a match inside a word is skipped), lstrip and rstrip (the token swallows adjacent whitespace).
 */
export function splitFast(text: string, tokens: readonly AddedToken[], patterns: readonly string[]): Segment[] {
  const segments: Segment[] = [];
  let offset = 0;
  let searchFrom = 0;
  for (;;) {
    const match = nextMatch(text, searchFrom, tokens, patterns);
    if (!match) break;
    let { start, end } = match;
    const { token } = match;
    if (token.singleWord) {
      const startOk = start === 0 || !WORD_AT_END.test(text.slice(0, start));
      const endOk = end === text.length || !WORD_AT_START.test(text.slice(end));
      if (!startOk || !endOk) {
        searchFrom = end;
        continue;
      }
    }
    if (token.lstrip) start = Math.max(offset, (SPACE_AT_END.exec(text.slice(0, start)) as RegExpExecArray).index);
    if (token.rstrip) end += (SPACE_AT_START.exec(text.slice(end)) as RegExpExecArray)[0].length;
    if (offset < start) segments.push({ text: text.slice(offset, start) });
    segments.push({ text: text.slice(start, end), token });
    offset = searchFrom = end;
  }
  if (offset < text.length) segments.push({ text: text.slice(offset) });
  return segments;
}

/**
 * transformers' PythonBackend.tokenize split (the slow tokenizer): cut the raw text at every added token's
 * content (case-sensitive, whatever `normalized` says), then let lstrip/rstrip tokens trim their neighbours'
 * whitespace and single_word tokens glue onto a neighbour that does not end/start with a space.
 */
export function splitSlow(text: string, tokens: readonly AddedToken[]): Segment[] {
  const pieces: Segment[] = [];
  let offset = 0;
  for (;;) {
    const match = nextMatch(text, offset, tokens, tokens.map((t) => t.content));
    if (!match) break;
    if (offset < match.start) pieces.push({ text: text.slice(offset, match.start) });
    pieces.push({ text: text.slice(match.start, match.end), token: match.token });
    offset = match.end;
  }
  if (offset < text.length) pieces.push({ text: text.slice(offset) });
  pieces.forEach((piece, i) => {
    const token = piece.token;
    if (!token) return;
    const left = pieces[i - 1];
    const right = pieces[i + 1];
    if (token.rstrip && right && right.text) right.text = right.text.replace(/^\s+/u, "");
    if (token.lstrip && left && left.text) left.text = left.text.replace(/\s+$/u, "");
    if (token.singleWord) {
      if (left && left.text && !left.text.endsWith(" ")) {
        left.text += piece.text;
        pieces[i] = { text: "" };
      } else if (right && right.text && !right.text.startsWith(" ")) {
        pieces[i + 1] = { text: piece.text + right.text };
        pieces[i] = { text: "" };
      }
    }
  });
  return pieces.filter((piece) => piece.text !== "");
}
