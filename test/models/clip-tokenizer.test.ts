// The CLIP tokenizer against transformers: every prompt of test/fixtures/prompts.txt, both pad conventions (SD1
// "<|endoftext|>", SD2 "!"), both transformers implementations (fast = transformers 5 CLIPTokenizer /
// CLIPTokenizerFast, slow = transformers 4's Python CLIPTokenizer), on a small CLIP-format BPE that
// test/oracle/fixtures_tokenizer.py trains (no download). Plus the config-file rules and error messages.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CLIPTokenizer, type TokenizerFlavor } from "../../src/models/clip/tokenizer.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures", "generated", "tokenizer");
const MAX = 77;

interface Recording {
  ids: number[][];
  padded: number[][];
  paddedMask: number[][];
  batches: { indices: number[]; ids: number[][]; mask: number[][]; truncated20: number[][] }[];
  decoded?: string[];
  decodedSkip?: string[];
}
interface Variant {
  bos: number;
  eos: number;
  pad: number;
  unk: number;
  modelMaxLength: number;
  len: number;
  fast: Recording;
  slow: Recording;
  slowFastDisagree: number[];
}
interface Expected {
  prompts: string[];
  numMerges: number;
  variants: Record<"sd1" | "sd2", Variant>;
  configVariants: {
    prompts: string[];
    results: Record<string, { bos: number; eos: number; pad: number; modelMaxLength: number | null; ids: number[][] }>;
  };
}

if (!existsSync(join(FIXTURES, "expected.json"))) {
  throw new Error(`${FIXTURES}/expected.json is missing: run .venv/bin/python test/oracle/generate.py tokenizer`);
}
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as Expected;
const prompts = expected.prompts;

/** test/fixtures/prompts.txt: one prompt a line; `json:` lines hold a JSON string (newlines, invisible chars). */
function parsePrompts(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line) => (line.startsWith("json:") ? (JSON.parse(line.slice(5)) as string) : line));
}

/** First few differences, readable: index, prompt, ours, theirs. */
function differences<T>(ours: T[], theirs: T[], show: (i: number) => string = (i) => JSON.stringify(prompts[i])): string[] {
  const out: string[] = [];
  for (let i = 0; i < theirs.length; i++) {
    if (JSON.stringify(ours[i]) !== JSON.stringify(theirs[i])) {
      out.push(`#${i} ${show(i)}: ours ${JSON.stringify(ours[i])} transformers ${JSON.stringify(theirs[i])}`);
    }
  }
  return out;
}

const tokenizers = new Map<string, CLIPTokenizer>();
function tokenizer(variant: "sd1" | "sd2", flavor: TokenizerFlavor): CLIPTokenizer {
  const key = `${variant}/${flavor}`;
  let tok = tokenizers.get(key);
  if (!tok) {
    tok = CLIPTokenizer.fromFolder(join(FIXTURES, variant), { flavor });
    tokenizers.set(key, tok);
  }
  return tok;
}

test("the corpus file holds ≥ 500 prompts, exactly the ones the oracle tokenized", () => {
  const fromFile = parsePrompts(readFileSync(join(ROOT, "test", "fixtures", "prompts.txt"), "utf8"));
  assert.ok(fromFile.length >= 500, `only ${fromFile.length} prompts`);
  assert.deepEqual(fromFile, prompts, "fixtures are stale: run .venv/bin/python test/oracle/generate.py tokenizer");
  assert.ok(expected.numMerges >= 2000, "the oracle vocabulary should have a few thousand merges");
});

for (const variant of ["sd1", "sd2"] as const) {
  const exp = expected.variants[variant];

  test(`${variant}: special token ids, vocabulary size and model_max_length match transformers`, () => {
    for (const flavor of ["fast", "slow"] as const) {
      const tok = tokenizer(variant, flavor);
      assert.deepEqual(
        [tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.unkTokenId, tok.vocabSize, tok.modelMaxLength],
        [exp.bos, exp.eos, exp.pad, exp.unk, exp.len, exp.modelMaxLength],
      );
    }
    assert.equal(tokenizer(variant, "fast").padToken, variant === "sd1" ? "<|endoftext|>" : "!");
  });

  for (const flavor of ["fast", "slow"] as const) {
    const rec = exp[flavor];

    test(`${variant}/${flavor}: ids of every prompt equal transformers' (unpadded, with start/end)`, () => {
      const tok = tokenizer(variant, flavor);
      const diff = differences(prompts.map((p) => tok.encode(p)), rec.ids, (i) => `${JSON.stringify(prompts[i])} ${JSON.stringify(tok.tokenize(prompts[i] as string))}`);
      assert.deepEqual(diff.slice(0, 10), [], `${diff.length} of ${prompts.length} prompts differ`);
    });

    test(`${variant}/${flavor}: padded to 77 with truncation, ids and attention masks equal transformers'`, () => {
      const tok = tokenizer(variant, flavor);
      const batch = tok.call(prompts, { padding: "max_length", maxLength: MAX, truncation: true });
      assert.deepEqual(differences(batch.inputIds, rec.padded).slice(0, 10), []);
      assert.deepEqual(differences(batch.attentionMask, rec.paddedMask).slice(0, 10), []);
      for (const ids of batch.inputIds) {
        assert.equal(ids.length, MAX);
        assert.equal(ids[0], exp.bos);
        assert.ok(ids.includes(exp.eos), "the end token survives truncation");
      }
      // The model's default length is the same thing.
      assert.deepEqual(tok.call(prompts.slice(0, 50), { padding: "max_length", truncation: true }).inputIds, rec.padded.slice(0, 50));
    });

    test(`${variant}/${flavor}: "longest" batches and truncation without padding equal transformers'`, () => {
      const tok = tokenizer(variant, flavor);
      for (const batch of rec.batches) {
        const texts = batch.indices.map((i) => prompts[i] as string);
        const longest = tok.call(texts, { padding: "longest", truncation: true });
        assert.deepEqual(longest.inputIds, batch.ids, `batch ${batch.indices.join(",")}`);
        assert.deepEqual(longest.attentionMask, batch.mask);
        assert.deepEqual(tok.call(texts, { padding: false, truncation: true, maxLength: 20 }).inputIds, batch.truncated20);
        assert.deepEqual(tok.call(texts, { maxLength: 20 }).inputIds, batch.truncated20, "maxLength without padding truncates");
      }
    });
  }

  test(`${variant}: the prompts where slow and fast transformers disagree are exactly where ours do`, () => {
    const fast = tokenizer(variant, "fast");
    const slow = tokenizer(variant, "slow");
    const ours = prompts.flatMap((p, i) => (JSON.stringify(fast.encode(p)) === JSON.stringify(slow.encode(p)) ? [] : [i]));
    assert.deepEqual(ours, exp.slowFastDisagree);
  });

  test(`${variant}: decode equals transformers' decode, with and without special tokens`, () => {
    const tok = tokenizer(variant, "fast");
    const ids = exp.fast.ids;
    assert.deepEqual(differences(ids.map((x) => tok.decode(x)), exp.fast.decoded as string[]).slice(0, 10), []);
    assert.deepEqual(differences(ids.map((x) => tok.decode(x, { skipSpecialTokens: true })), exp.fast.decodedSkip as string[]).slice(0, 10), []);
    assert.deepEqual(tokenizer(variant, "slow").decode(ids[1] as number[]), exp.fast.decoded?.[1]);
  });
}

test("decode round-trips plain ASCII prompts: re-encoding the decoded text gives the same ids", () => {
  const tok = tokenizer("sd1", "fast");
  let checked = 0;
  prompts.forEach((prompt, i) => {
    if (!/^[\x20-\x7e]*$/.test(prompt) || /<\|/.test(prompt)) return;
    const ids = expected.variants.sd1.fast.ids[i] as number[];
    const text = tok.decode(ids, { skipSpecialTokens: true });
    assert.deepEqual(tok.encode(text), ids, `#${i} ${JSON.stringify(prompt)} → ${JSON.stringify(text)}`);
    if (prompt === prompt.toLowerCase() && /^[a-z ]+$/.test(prompt) && !/ {2}/.test(prompt)) assert.equal(text, prompt.trim());
    checked++;
  });
  assert.ok(checked > 300, `only ${checked} ASCII prompts`);
});

test('"sks" is one token; words the BPE never saw split into pieces', () => {
  const tok = tokenizer("sd1", "fast");
  assert.deepEqual(tok.tokenize("a sks face"), ["a</w>", "sks</w>", "face</w>"]);
  assert.deepEqual(tok.tokenize("A Photo of SKS person"), ["a</w>", "photo</w>", "of</w>", "sks</w>", "person</w>"]);
  assert.ok(tok.tokenize("pneumonoultramicroscopicsilicovolcanoconiosis").length > 3);
  assert.deepEqual(tok.encode(""), [tok.bosTokenId, tok.eosTokenId]);
  assert.equal(tok.tokenToId("sks</w>"), tok.encode("sks")[1]);
  assert.equal(tok.idToToken(tok.bosTokenId), "<|startoftext|>");
});

test("a tokenizer.json saved by transformers gives the same ids as the vocab.json + merges.txt folder", () => {
  for (const flavor of ["fast", "slow"] as const) {
    const tok = CLIPTokenizer.fromFolder(join(FIXTURES, "sd2-saved"), { flavor });
    const diff = differences(prompts.map((p) => tok.encode(p)), expected.variants.sd2[flavor].ids);
    assert.deepEqual(diff.slice(0, 10), [], `${flavor}: ${diff.length} differ`);
    assert.equal(tok.padTokenId, expected.variants.sd2.pad);
  }
});

test("special-token rules of the config files (strings, AddedToken objects, added_tokens_decoder, strip) match transformers", () => {
  const { prompts: texts, results } = expected.configVariants;
  for (const [name, result] of Object.entries(results)) {
    const dir = join(FIXTURES, "variants", name);
    const at = (file: string) => (existsSync(join(dir, file)) ? join(dir, file) : undefined);
    const tok = CLIPTokenizer.fromFiles({
      vocab: join(FIXTURES, "sd1", "vocab.json"),
      merges: join(FIXTURES, "sd1", "merges.txt"),
      specialTokensMap: at("special_tokens_map.json"),
      tokenizerConfig: at("tokenizer_config.json"),
    });
    assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId], [result.bos, result.eos, result.pad], name);
    assert.equal(tok.modelMaxLength, result.modelMaxLength ?? Infinity, name);
    assert.deepEqual(texts.map((t) => tok.encode(t)), result.ids, name);
  }
});

test("padding to max length needs a length when the files give no model_max_length", () => {
  const tok = CLIPTokenizer.fromFiles({ vocab: join(FIXTURES, "sd1", "vocab.json"), merges: join(FIXTURES, "sd1", "merges.txt") });
  assert.equal(tok.modelMaxLength, Infinity);
  assert.throws(() => tok.call(["a"], { padding: "max_length" }), /model_max_length: pass maxLength/);
  assert.equal(tok.call(["a"], { padding: "max_length", maxLength: 5 }).inputIds[0]?.length, 5);
  assert.throws(() => tok.call(["a"], { truncation: true, maxLength: 1 }), /no room/);
  assert.deepEqual(tok.call("a sks face").inputIds, [tok.encode("a sks face")]);
});

const scratch = mkdtempSync(join(tmpdir(), "clip-tokenizer-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of the sd1 folder with one file replaced (or removed when `content` is null). */
function brokenFolder(name: string, file: string, content: string | null): string {
  const dir = join(scratch, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"]) {
    if (f !== file) copyFileSync(join(FIXTURES, "sd1", f), join(dir, f));
  }
  if (content !== null) writeFileSync(join(dir, file), content);
  return dir;
}

test("missing or malformed files fail with the file's name and the problem", () => {
  const cases: [string, string, string | null, RegExp][] = [
    ["no-vocab", "vocab.json", null, /vocab\.json not found/],
    ["no-merges", "merges.txt", null, /merges\.txt not found/],
    ["vocab-not-json", "vocab.json", "{not json", /vocab\.json: not valid JSON/],
    ["vocab-array", "vocab.json", "[1, 2]", /vocab\.json: expected a JSON object mapping token strings to ids, found an array/],
    ["vocab-bad-id", "vocab.json", '{"a": 0, "b": "one"}', /vocab\.json: token "b" has id string "one"/],
    ["vocab-negative", "vocab.json", '{"a": -1}', /vocab\.json: token "a" has id -1/],
    ["vocab-duplicate", "vocab.json", '{"a": 0, "b": 0}', /vocab\.json: tokens "a" and "b" both have id 0/],
    ["vocab-empty", "vocab.json", "{}", /vocab\.json: the vocabulary is empty/],
    ["merges-bad-line", "merges.txt", "#version: 0.2\nt h\nthree parts here\n", /merges\.txt:3: expected two symbols/],
    ["merges-unknown", "merges.txt", "#version: 0.2\nt h\nq \u4e00\n", /merges\.txt: merge 2 \("q \u4e00"\) needs "\u4e00", which is not in the vocabulary \(.*vocab\.json\)/],
    ["config-not-json", "tokenizer_config.json", "{", /tokenizer_config\.json: tokenizer_config\.json is not valid JSON/],
    ["special-bad", "special_tokens_map.json", '{"pad_token": 3}', /pad_token.*expected a token string or an object/],
  ];
  for (const [name, file, content, pattern] of cases) {
    const dir = brokenFolder(name, file, content);
    assert.throws(() => CLIPTokenizer.fromFolder(dir), (error: Error) => {
      assert.match(error.message, pattern, name);
      if (content !== null) assert.ok(error.message.includes(join(dir, file)), `${name}: ${error.message} names the file`);
      return true;
    });
  }
  assert.throws(() => CLIPTokenizer.fromFolder(join(scratch, "nowhere")), /tokenizer folder not found/);
  const json = join(scratch, "tokenizer.json");
  writeFileSync(json, JSON.stringify({ model: { type: "BPE", vocab: { a: 0 }, merges: [], end_of_word_suffix: "" } }));
  assert.throws(() => CLIPTokenizer.fromFiles({ tokenizerJson: json }), /tokenizer\.json: end_of_word_suffix is "", a CLIP tokenizer uses "<\/w>"/);
  writeFileSync(json, JSON.stringify({ model: { type: "BPE", vocab: { a: 0 }, merges: [["a"]], end_of_word_suffix: "</w>" } }));
  assert.throws(() => CLIPTokenizer.fromFiles({ tokenizerJson: json }), /model\.merges\[0\] is not a pair of symbols/);
});
