/**
 * A strict JSON parser for safetensors headers.
 *
 * `JSON.parse` cannot be used on untrusted headers: it silently keeps the last of duplicate keys, turns
 * `1.0` and `1e0` into the integer 1 (the reference reader rejects both as shape entries or offsets), rounds
 * integers beyond 2^53, and lets `"__proto__"` keys touch prototypes. This parser keeps numbers as their
 * source text, builds objects as Maps (so any key is safe) and reports duplicate keys, lone surrogate
 * escapes, control characters in strings and nesting deeper than serde_json's limit of 128. It is linear in
 * the length of the text and never recurses deeper than that limit.
 */

/** A JSON number, kept as its source text so integers and non-integers can be told apart exactly. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A parsed JSON value: objects are Maps in source order, numbers are JsonNumber. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** Thrown for any syntax error; `offset` is the UTF-16 index in the text where the problem was found. */
export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at character ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

/** serde_json's recursion limit, which the reference safetensors reader inherits. */
export const MAX_JSON_DEPTH = 128;

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** Parses one JSON document (surrounding whitespace allowed, nothing else). */
export function parseJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.value(0);
  parser.skipWhitespace();
  if (parser.pos !== text.length) throw new JsonSyntaxError("unexpected characters after the JSON value", parser.pos);
  return value;
}

class Parser {
  pos = 0;

  constructor(private readonly text: string) {}

  skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  value(depth: number): JsonValue {
    const c = this.text[this.pos];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      case undefined:
        throw new JsonSyntaxError("unexpected end of JSON", this.pos);
      default:
        return this.number();
    }
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw new JsonSyntaxError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, this.pos);
  }

  private object(depth: number): JsonObject {
    this.checkDepth(depth);
    const result: JsonObject = new Map();
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return result;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') throw new JsonSyntaxError("expected a string key", this.pos);
      const keyAt = this.pos;
      const key = this.string();
      if (result.has(key)) throw new JsonSyntaxError(`duplicate key ${JSON.stringify(key)}`, keyAt);
      this.skipWhitespace();
      this.expect(":");
      this.skipWhitespace();
      result.set(key, this.value(depth));
      this.skipWhitespace();
      if (this.text[this.pos] === "}") {
        this.pos++;
        return result;
      }
      this.expect(",");
      this.skipWhitespace();
    }
  }

  private array(depth: number): JsonValue[] {
    this.checkDepth(depth);
    const result: JsonValue[] = [];
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth));
      this.skipWhitespace();
      if (this.text[this.pos] === "]") {
        this.pos++;
        return result;
      }
      this.expect(",");
      this.skipWhitespace();
    }
  }

  private expect(char: string): void {
    if (this.text[this.pos] !== char) throw new JsonSyntaxError(`expected '${char}'`, this.pos);
    this.pos++;
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) throw new JsonSyntaxError("invalid literal", this.pos);
    this.pos += word.length;
    return value;
  }

  private number(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match) throw new JsonSyntaxError("expected a JSON value", this.pos);
    this.pos += match[0].length;
    return new JsonNumber(match[0]);
  }

  /** A string starting at the opening quote; runs of plain characters are sliced, not copied per char. */
  private string(): string {
    const text = this.text;
    this.pos++;
    let out = "";
    for (;;) {
      let end = this.pos;
      for (let code = text.charCodeAt(end); code >= 0x20 && code !== 0x22 && code !== 0x5c; code = text.charCodeAt(end)) end++;
      out += text.slice(this.pos, end);
      this.pos = end;
      const c = text[this.pos];
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === undefined) throw new JsonSyntaxError("unterminated string", this.pos);
      if (c !== "\\") throw new JsonSyntaxError("control character in a string", this.pos);
      out += this.escape();
    }
  }

  /** One escape sequence at a backslash; a \u surrogate must come as a complete pair, as in serde_json. */
  private escape(): string {
    const at = this.pos;
    const kind = this.text[at + 1];
    if (kind === undefined) throw new JsonSyntaxError("unterminated string", at);
    const simple = SIMPLE_ESCAPES[kind];
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (kind !== "u") throw new JsonSyntaxError("invalid escape", at);
    const unit = this.hex4(at + 2);
    this.pos = at + 6;
    if (unit >= 0xdc00 && unit <= 0xdfff) throw new JsonSyntaxError("lone low surrogate in a \\u escape", at);
    if (unit < 0xd800 || unit > 0xdbff) return String.fromCharCode(unit);
    if (this.text[this.pos] !== "\\" || this.text[this.pos + 1] !== "u") {
      throw new JsonSyntaxError("high surrogate \\u escape without its low half", at);
    }
    const low = this.hex4(this.pos + 2);
    if (low < 0xdc00 || low > 0xdfff) throw new JsonSyntaxError("high surrogate \\u escape without its low half", at);
    this.pos += 6;
    return String.fromCharCode(unit, low);
  }

  private hex4(from: number): number {
    const digits = this.text.slice(from, from + 4);
    if (!HEX4.test(digits)) throw new JsonSyntaxError("invalid \\u escape", from - 2);
    return parseInt(digits, 16);
  }
}
