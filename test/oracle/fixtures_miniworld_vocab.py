"""Mini-world vocabulary fixtures: transformers' CLIPTokenizer on the tokenizer files our TypeScript code writes.

test/miniworld/fixtures/tokenizer/ (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json) is
written by src/miniworld/vocabulary.ts, and test/miniworld/fixtures/captions.json holds captions, identifier
prompts, style prompts and every vocabulary word, written by test/miniworld/export-fixtures.ts. Here both
transformers 5 tokenizer classes (CLIPTokenizer and CLIPTokenizerFast, the `tokenizers` backend) load the
folder and encode every text; test/miniworld/vocabulary.test.ts holds our CLIPTokenizer to the same ids.

Written: expected.json with, per text, the unpadded ids and the ids padded/truncated to 77; per vocabulary word,
its token strings (each must be one token); the special token ids and the vocabulary size.
"""
from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "test" / "miniworld" / "fixtures" / "tokenizer"
CAPTIONS = ROOT / "test" / "miniworld" / "fixtures" / "captions.json"
INPUTS = [
    "test/miniworld/fixtures/tokenizer/vocab.json",
    "test/miniworld/fixtures/tokenizer/merges.txt",
    "test/miniworld/fixtures/tokenizer/special_tokens_map.json",
    "test/miniworld/fixtures/tokenizer/tokenizer_config.json",
    "test/miniworld/fixtures/captions.json",
]
MAX_LENGTH = 77


def generate(out_dir: pathlib.Path) -> None:
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the all-words text is longer than 77 tokens on purpose
    data = json.loads(CAPTIONS.read_text(encoding="utf-8"))
    texts, words = data["texts"], data["words"]
    tok = CLIPTokenizer.from_pretrained(str(TOKENIZER))
    fast = CLIPTokenizerFast.from_pretrained(str(TOKENIZER))
    ids = [tok(t)["input_ids"] for t in texts]
    assert ids == [fast(t)["input_ids"] for t in texts], "CLIPTokenizer and CLIPTokenizerFast disagree"
    padded = [tok(t, padding="max_length", max_length=MAX_LENGTH, truncation=True)["input_ids"] for t in texts]
    word_tokens = {w: tok.convert_ids_to_tokens(tok(w, add_special_tokens=False)["input_ids"]) for w in words}
    several = [w for w, toks in word_tokens.items() if len(toks) != 1]
    assert not several, f"words that are not single tokens in transformers: {several[:10]}"
    identifiers = {w: tok.convert_tokens_to_ids(w + "</w>") for w in data["identifiers"]}
    expected = {
        "texts": texts, "ids": ids, "padded": padded, "wordTokens": word_tokens, "identifierIds": identifiers,
        "bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id, "len": len(tok),
    }
    (out_dir / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
    print(f"oracle miniworld_vocab: {len(texts)} texts, {len(words)} words, {len(tok)} tokens", file=sys.stderr)


if __name__ == "__main__":
    print("usage: .venv/bin/python test/oracle/generate.py miniworld_vocab")
