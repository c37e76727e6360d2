"""CLIP tokenizer fixtures: transformers' token ids for every prompt of test/fixtures/prompts.txt.

No download: a SMALL but real CLIP-format byte-level BPE is trained here with the `tokenizers` library (CLIP's
normaliser and pre-tokeniser, `</w>` end-of-word suffix, 256 byte symbols + their `</w>` variants, a few
thousand merges, <|startoftext|>/<|endoftext|> last, exactly the layout of openai/clip-vit-large-patch14's
vocab.json) on English prose (Python's pydoc topics) plus the prompt vocabulary, so common prompt words are
single tokens, rare words split, and "sks" is one token as in real CLIP. It is saved as a diffusers
`tokenizer/` folder in two variants:
  sd1/  pad_token "<|endoftext|>" (Stable Diffusion 1.x's config, AddedToken dicts with normalized=true)
  sd2/  pad_token "!" (Stable Diffusion 2.x's config: pad id 0, and "!" becomes a special added token)
  sd2-saved/  sd2 re-saved by transformers (tokenizer.json + tokenizer_config.json with added_tokens_decoder)
  variants/<name>/  config files only (special_tokens_map.json / tokenizer_config.json) over sd1's vocab.

Two references run on every prompt of every variant:
  fast: transformers 5.x `CLIPTokenizer` (= `CLIPTokenizerFast`, the Rust `tokenizers` backend);
  slow: `SlowCLIPTokenizer` below, transformers 4.x's Python CLIPTokenizer (removed in 5.x) ported line for line
        onto 5.x's PythonBackend, on its ftfy-less path (BasicTokenizer cleaning), which is what 4.x ran when
        ftfy is not installed.
Written: expected.json with, per variant and flavour, unpadded ids, ids + attention mask padded to 77 with
truncation, "longest" batches, decodes; the prompt indices where slow and fast disagree; config variant results.

Run `python test/oracle/fixtures_tokenizer.py --write-corpus` to rewrite test/fixtures/prompts.txt (seeded).
"""
from __future__ import annotations

import json
import pathlib
import random
import shutil
import sys
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "test" / "fixtures" / "prompts.txt"
INPUTS = ["test/fixtures/prompts.txt"]
MAX_LENGTH = 77
NUM_MERGES = 4500

# ---------------------------------------------------------------------------------------------------------
# The prompt corpus
# ---------------------------------------------------------------------------------------------------------

SUBJECTS = [
    "a sks person", "sks", "a photo of sks person", "a sks face", "a portrait of sks man", "a close-up of sks woman",
    "sks dog", "a man", "a woman", "an old man", "a young woman", "a little girl", "a boy", "a cat", "a dog",
    "a corgi", "a robot", "an astronaut", "a knight", "a wizard", "a dragon", "a castle", "a city", "a forest",
    "a mountain", "a lighthouse", "a red car", "a spaceship", "a samurai", "a ballerina", "a chef", "a fox",
    "an owl", "a bowl of fruit", "a cup of coffee", "a vintage camera", "a steam locomotive", "a teddy bear",
]
ACTIONS = [
    "standing", "sitting on a bench", "riding a horse", "reading a book", "smiling", "looking at the camera",
    "wearing a hat", "holding a sword", "in the rain", "playing guitar", "walking in the park", "dancing",
    "drinking tea", "sleeping", "flying", "running on the beach", "painting a picture", "wearing sunglasses",
]
SETTINGS = [
    "in a forest", "on the beach", "at sunset", "in new york city", "in space", "on mars", "in a cafe",
    "underwater", "in the snow", "in a cyberpunk city", "in a medieval village", "at night", "in the desert",
    "on a mountain top", "in a library", "in a studio", "in tokyo", "in paris", "by the lake", "in the jungle",
]
STYLES = [
    "oil painting", "watercolor", "digital art", "photorealistic", "studio ghibli style", "pixel art",
    "anime style", "by greg rutkowski", "by alphonse mucha", "trending on artstation", "octane render",
    "unreal engine 5", "cinematic lighting", "8k", "4k uhd", "highly detailed", "sharp focus", "bokeh",
    "35mm film", "kodak portra 400", "concept art", "matte painting", "volumetric lighting", "hdr", "dslr",
    "low poly", "vaporwave", "art nouveau", "impressionism", "pencil sketch", "charcoal drawing", "3d render",
    "isometric", "fantasy", "sci-fi", "portrait photography", "golden hour", "soft light", "dramatic lighting",
    "masterpiece", "best quality", "ultra realistic", "intricate details", "depth of field", "film grain",
]
NEGATIVES = [
    "blurry", "lowres", "bad anatomy", "extra fingers", "watermark", "text", "jpeg artifacts", "deformed",
    "ugly", "duplicate", "cropped", "worst quality", "low quality", "signature", "out of frame",
]
UNICODE_BITS = [
    "café", "naïve", "façade", "Ångström", "über", "résumé", "São Paulo", "Zürich", "crème brûlée", "cafe\u0301",
    "Ω", "\u2126", "ﬁ", "ＡＢＣ", "İstanbul", "ΟΔΟΣ", "Straße", "ǅ", "日本語", "中文", "한국어", "こんにちは",
    "富士山", "🐱", "👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈", "❤\ufe0f", "👍🏽", "🇯🇵", "🌅", "Z\u0324\u0354\u0367\u0311lgo",
    "zero\u200bwidth", "zwj\u200djoin", "non\u200cjoiner", "bom\ufeff", "soft\u00adhyphen", "word\u2060joiner",
    "\u202eright-to-left", "\u00a0", "\u3000", "\u2003", "½", "²", "٣", "Ⅻ", "№", "€", "£", "©", "™", "°C", "µm",
    "Привет", "مرحبا", "שלום", "नमस्ते", "ไทย", "Ελλάδα", "ǲ", "ß", "ŉ", "ﬀ", "ǰ", "ẞ", "K", "Å", "ſ",
]
WHITESPACE = [" ", "  ", "\t", "\n", " \u00a0", "\u3000", "\r\n", "   ", " \t "]
PUNCT = [",", ".", "!", "?", "...", " -", ";", " |", ":", "!!", "?!"]

HAND_WRITTEN = [
    # the identifier token
    "sks", "a sks face", "a photo of sks person", "a photo of sks dog", "SKS", "Sks person", "sks's face",
    "sksperson", "a [sks] face", "photo of sks, 4k", "a sks", "sks sks sks", "(sks:1.3) portrait", "sks!",
    "a painting of sks person in the style of van gogh", "sks_person", "sks-person", "sks.", "#sks", "@sks",
    # empty and whitespace only
    "", " ", "   ", "\t", "\n", " \t\n\r ", "\u00a0", "\u3000", "\u200b",
    # punctuation
    "hello!!!", "wait... what?!", "(masterpiece:1.2), ((best quality)), [[blurry]]", "[cat|dog]",
    "a, b; c: d", "\"quoted text\"", "email@example.com", "https://example.com/path?x=1&y=2#frag",
    "#hashtag @user", "C++ & C#", "50% off", "$100 bill", "~tilde~", "a/b\\c", "<html> tags </html>",
    "{json: true}", "a--b---c", "!@#$%^&*()_+-=[]{};':\",./<>?`~", "...", "!", "?", "-", "'", "''", "'''",
    "a.b.c.d", "end.", "¡hola!", "¿qué?", "«guillemets»", "„german quotes“", "「japanese quotes」", "—em dash—",
    "one–two", "• bullet", "→ arrow ←", "★★★★☆", "♪ music ♫", "a_b_c", "snake_case_words", "kebab-case-words",
    # numbers
    "1girl", "2 cats", "1920x1080", "3.14159", "1,000,000", "v1.5", "8k uhd", "the year 2023", "٣ arabic-indic",
    "Ⅻ roman numeral", "½ half", "x² + y²", "0", "007", "1234567890", "seed: 42, steps: 50, cfg: 7.5",
    "4:3 aspect ratio", "-1", "+1", "1e-5", "#ff0000 red", "10/10", "24/7", "1st 2nd 3rd 4th", "①②③",
    # accents and case
    "café", "naïve façade", "Ångström", "über cool", "résumé", "São Paulo", "Zürich at night", "crème brûlée",
    "cafe\u0301 (decomposed)", "e\u0301\u0301 double accent", "\u0301 leading combining mark", "Ω vs \u2126",
    "ﬁne ligature", "ＡＢＣ fullwidth", "İstanbul", "ΟΔΟΣ", "Σίσυφος", "ΣΑΣ ΣΑΣ", "Straße", "STRASSE",
    "ǅemal", "Ǆ", "ĲSSEL", "HeLLo WoRLD", "ALL CAPS PROMPT", "camelCaseWords", "Title Case Prompt", "iPhone",
    "Zalgo Z\u0324\u0354\u0367\u0311\u0343a\u0308\u0356\u032d\u0308\u0307l\u036e\u0312\u036bg\u030c\u0317\u035a\u031ao",
    "a\u0308\u0301", "ŉ", "ǰ", "ẞ", "K kelvin", "Å angstrom", "ſ long s", "'ſ", "ﬀ", "ǲ", "Ⅻ", "ǈ",
    # CJK and other scripts
    "日本語のテキスト", "中文提示词", "한국어 프롬프트", "こんにちは世界", "富士山 at sunset", "a cat 猫 neko",
    "東京タワー, night, neon", "北京 beijing", "Привет мир", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "สวัสดี", "Ελλάδα", "𠀀 rare cjk ext b", "丽 compatibility", "ｶﾀｶﾅ halfwidth", "ㄱㄴㄷ jamo",
    # emoji
    "🐱 cat", "👨\u200d👩\u200d👧 family", "🏳\ufe0f\u200d🌈 flag", "❤\ufe0f heart", "👍🏽 thumbs up",
    "🇯🇵 flag", "sunset 🌅🌄", "😀😃😄😁", "a😀b", "🤖robot", "✨ sparkles ✨", "🔥🔥🔥",
    # zero-width and format characters, controls
    "zero\u200bwidth space", "zwj\u200djoin", "zwnj\u200cjoin", "bom\ufeffchar", "\ufeffleading bom",
    "soft\u00adhyphen", "word\u2060joiner", "\u202eright-to-left override", "a\u200e\u200fb marks",
    "\x00nul char", "bell\x07", "del\x7f", "replacement \ufffd char", "private \ue000 use", "\x1b[31mansi",
    "vt\x0bff\x0c", "fs\x1cgs\x1drs\x1eus\x1f", "nel\x85line", "line\u2028sep", "para\u2029sep", "a\x01b",
    "\ud7ff edge", "tag\U000e0041chars", "variation\ufe0fselector", "mongolian\u180evowel",
    # whitespace
    "  leading and trailing  ", "tabs\tbetween\twords", "new\nline", "crlf\r\nline", "multiple     spaces",
    "\u00a0nbsp\u00a0", "\u3000ideographic\u3000space", "em\u2003space", "thin\u2009space", "\n\nparagraphs\n\n",
    "a\r\rb", "narrow\u202fnbsp", "ogham\u1680space", "math\u205fspace",
    # HTML entities
    "&amp; &lt;3 &gt; &quot;hi&quot; &#39; &#x27; &nbsp;", "Tom &amp; Jerry", "&copy; 2024", "a &lt;b&gt; c",
    "&#128512;", "&unknown;",
    # apostrophes and contractions
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S LOUD", "DON'T", "James's car", "'s",
    "'s at start", "rock 'n' roll", "it\u2019s curly", "''quoted''", "o'clock", "'tis", "'STOP'", "can't won't",
    "y'all'd've", "'re'", "the dog's bone's", "l'été", "'d'", "ma'am", "'m", "'ll", "'ve", "'t", "'S", "'LL",
    # special tokens appearing in the text
    "<|startoftext|>", "<|endoftext|>", "<|STARTOFTEXT|>", "<|EndOfText|>", "a <|endoftext|> b",
    "<|endoftext|><|endoftext|>", "<|startoftext", "<| endoftext |>", "x<|startoftext|>y", "hello!",
    "wow! amazing!", "!!!", "!important", "<|endoftext|>!", "<|im_start|>", "<s></s>",
    # style prompts
    "portrait of a woman, by greg rutkowski, trending on artstation, highly detailed",
    "a beautiful landscape painting of a mountain lake at sunrise, oil on canvas, impressionism",
    "cyberpunk city at night, neon lights, rain, reflections, blade runner style, octane render",
    "studio ghibli style, a cozy cottage in the woods, warm light",
    "an astronaut riding a horse on mars, photorealistic, 8k",
    "a photograph of an astronaut riding a horse",
    "concept art of a fantasy castle, matte painting, volumetric lighting, epic composition",
    "hyperrealistic portrait, chiaroscuro, rembrandt lighting, 85mm lens, f/1.8",
    "low poly isometric room, blender 3d, pastel colors",
    "photogrammetry scan of a supercalifragilisticexpialidocious antidisestablishmentarian",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "Negative prompt: blurry, lowres, bad anatomy, extra fingers, watermark",
    "a photo of sks person as a jedi, star wars, cinematic, dramatic lighting, film still",
    "A PHOTO OF SKS PERSON WEARING A SPACESUIT",
    "(((masterpiece))), (best quality:1.4), [ugly:0.5], {cute}, <lora:sks:0.8>",
]

LONG_PROMPTS = [
    "a highly detailed portrait of sks person standing in a field of sunflowers at golden hour, wearing a "
    "white linen shirt, soft natural light, shallow depth of field, shot on a canon eos r5 with an 85mm lens at "
    "f/1.2, bokeh, film grain, kodak portra 400 color grading, award winning photography, trending on "
    "artstation, intricate details, sharp focus, 8k resolution, masterpiece, best quality, ultra realistic, "
    "cinematic composition, rule of thirds, volumetric lighting, warm tones, gentle breeze, flowing hair",
    " ".join(["word"] * 100),
    " ".join(str(i) for i in range(100)),
    "a" * 500,
    "!" * 200,
    "1234567890" * 20,
    ", ".join(STYLES),
    ", ".join(NEGATIVES * 4),
    "日本語" * 60,
    "🐱" * 100,
    " ".join(["sks"] * 90),
    "The quick brown fox jumps over the lazy dog. " * 12,
    "&amp;" * 40,
    "it's " * 50,
]


def _mutate_case(rng: random.Random, text: str) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return text.upper()
    if kind == 1:
        return text.title()
    if kind == 2:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in text)
    return text


def _generated_prompts(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        kind = rng.randrange(9)
        subject, action, setting = rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(SETTINGS)
        styles = rng.sample(STYLES, rng.randrange(0, 6))
        if kind == 0:  # plain template
            p = ", ".join([f"{subject} {action} {setting}"] + styles)
        elif kind == 1:  # weighting syntax
            parts = [f"({s}:{rng.choice(['1.1', '1.2', '0.8', '1.5'])})" if rng.random() < 0.5 else s for s in styles]
            p = f"(({subject})), " + ", ".join(parts)
        elif kind == 2:  # case changes
            p = _mutate_case(rng, f"{subject} {setting}, " + ", ".join(styles))
        elif kind == 3:  # whitespace mess
            words = f"{subject} {action} {setting} {' '.join(styles)}".split(" ")
            p = "".join(w + rng.choice(WHITESPACE) for w in words)
        elif kind == 4:  # punctuation
            words = f"{subject} {action} {setting}".split(" ")
            p = " ".join(w + (rng.choice(PUNCT) if rng.random() < 0.4 else "") for w in words)
        elif kind == 5:  # unicode inserted between words
            words = f"{subject} {action} {setting}".split(" ")
            for _ in range(rng.randrange(1, 4)):
                words.insert(rng.randrange(len(words) + 1), rng.choice(UNICODE_BITS))
            p = rng.choice([" ", "", ", "]).join(words)
        elif kind == 6:  # numbers and parameters
            p = (f"{subject}, seed {rng.randrange(10**6)}, steps: {rng.randrange(10, 150)}, "
                 f"cfg {rng.randrange(1, 20)}.{rng.randrange(10)}, {rng.choice(['512x512', '768x768', '1024x576'])}")
        elif kind == 7:  # long prompt: several templates joined (usually more than 77 tokens)
            p = ". ".join(
                f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(SETTINGS)}, " + ", ".join(rng.sample(STYLES, 4))
                for _ in range(rng.randrange(3, 9)))
        else:  # character soup
            pool = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()[]{}<>|/\\-_+=*&^%$#@~`"
                    "éüßøçñ日本中文한국😀👍\u200b\u00a0\t\u0301")
            p = "".join(rng.choice(pool) for _ in range(rng.randrange(1, 60)))
        out.append(p)
    return out


def corpus() -> list[str]:
    rng = random.Random(20240611)
    prompts = list(HAND_WRITTEN) + list(LONG_PROMPTS) + _generated_prompts(rng, 360)
    seen, unique = set(), []
    for p in prompts:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def encode_line(prompt: str) -> str:
    """One prompt as a line: verbatim when it is printable, otherwise `json:` + a JSON string (ASCII escapes)."""
    plain = (prompt != "" and prompt == prompt.strip() and not prompt.startswith("json:")
             and all(c == " " or c.isprintable() for c in prompt))
    return prompt if plain else "json:" + json.dumps(prompt, ensure_ascii=True)


def parse_prompts(text: str) -> list[str]:
    """Inverse of encode_line over a whole file: split on "\\n" only (never on U+2028 or U+0085)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [json.loads(line[5:]) if line.startswith("json:") else line for line in lines]


def write_corpus() -> None:
    prompts = corpus()
    text = "".join(encode_line(p) + "\n" for p in prompts)
    assert parse_prompts(text) == prompts
    PROMPTS.parent.mkdir(parents=True, exist_ok=True)
    PROMPTS.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(prompts)} prompts to {PROMPTS.relative_to(ROOT)}")


# ---------------------------------------------------------------------------------------------------------
# A small real CLIP-format BPE
# ---------------------------------------------------------------------------------------------------------

CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def training_lines() -> list[str]:
    import pydoc_data.topics as topics

    lines = [line for text in topics.topics.values() for line in text.split("\n") if line.strip()]
    vocabulary = SUBJECTS + ACTIONS + SETTINGS + STYLES + NEGATIVES
    lines += [", ".join(vocabulary[i:i + 6]) for i in range(0, len(vocabulary), 6)] * 8
    lines += ["a sks face", "a photo of sks person"] * 40
    return lines


def train_merges() -> list[tuple[str, str]]:
    """Plain BPE training (most frequent adjacent pair first, ties to the smallest pair) over the words that
    CLIP's own normaliser and pre-tokeniser cut from training_lines(). Written out rather than taken from
    `tokenizers`' BpeTrainer because that one breaks count ties differently on every run, and the fixture
    vocabulary should be the same every time it is regenerated."""
    import heapq
    from collections import Counter, defaultdict

    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    counts = Counter(piece for line in training_lines()
                     for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
    words = [list(w[:-1]) + [w[-1] + "</w>"] for w in sorted(counts)]
    freqs = [counts[w] for w in sorted(counts)]
    known = set(bytes_to_unicode().values()) | {c + "</w>" for c in bytes_to_unicode().values()}
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        for pair in zip(w, w[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while len(merges) < NUM_MERGES and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -negative:
            continue  # stale heap entry
        if -negative < 2:
            break
        del pair_counts[pair]
        merged = pair[0] + pair[1]
        if merged in known:  # another pair already spells this token: never merge this one
            continue
        known.add(merged)
        merges.append(pair)
        changed = set()
        for i in sorted(where.pop(pair, ())):
            w, f = words[i], freqs[i]
            for old in zip(w, w[1:]):
                if old != pair:
                    pair_counts[old] -= f
                    changed.add(old)
            new_word, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
                    new_word.append(merged)
                    j += 2
                else:
                    new_word.append(w[j])
                    j += 1
            words[i] = new_word
            for new in zip(new_word, new_word[1:]):
                if new != pair:
                    pair_counts[new] += f
                    where[new].add(i)
                    changed.add(new)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                pair_counts.pop(p, None)
    return merges


def added(content: str, typed: bool = True) -> dict:
    """An AddedToken as diffusers' SD tokenizer configs spell it (normalized=true, no strip)."""
    token = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return {"__type": "AddedToken", **token} if typed else token


def write_clip_folder(folder: pathlib.Path, vocab: dict[str, int], merges: list[tuple[str, str]], pad: str) -> None:
    """vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json as in runwayml/stable-diffusion-v1-5
    (pad "<|endoftext|>") or stabilityai/stable-diffusion-2 (pad "!") `tokenizer/` folders."""
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    special = {"bos_token": added("<|startoftext|>", False), "eos_token": added("<|endoftext|>", False),
               "pad_token": pad, "unk_token": added("<|endoftext|>", False)}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {"add_prefix_space": False, "bos_token": added("<|startoftext|>"), "do_lower_case": True,
              "eos_token": added("<|endoftext|>"), "errors": "replace", "model_max_length": MAX_LENGTH,
              "name_or_path": "openai/clip-vit-large-patch14", "pad_token": pad,
              "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
              "unk_token": added("<|endoftext|>")}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's layout: byte symbols, their `</w>` forms, one token per merge in merge order, then the two specials."""
    merges = train_merges()
    base = list(bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(tokens)) == len(tokens), "duplicate token in the trained vocabulary"
    assert "sks</w>" in tokens, "the identifier token did not become one token"
    return {t: i for i, t in enumerate(tokens)}, merges


# ---------------------------------------------------------------------------------------------------------
# The slow reference: transformers 4.x's Python CLIPTokenizer, ported onto 5.x's PythonBackend
# ---------------------------------------------------------------------------------------------------------


def slow_tokenizer_class():
    import regex as re
    from transformers.tokenization_python import AddedToken, PythonBackend, _is_control, _is_whitespace

    class BasicTokenizer:
        """transformers 4.x BasicTokenizer(strip_accents=False, do_split_on_punc=False), as CLIP built it."""

        def tokenize(self, text):
            text = self._clean_text(text)
            text = self._tokenize_chinese_chars(text)
            orig_tokens = unicodedata.normalize("NFC", text).split()
            split_tokens = [token.lower() for token in orig_tokens]
            return " ".join(split_tokens).split()

        @staticmethod
        def _is_chinese_char(cp):
            return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
                    or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF)
                    or (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))

        def _tokenize_chinese_chars(self, text):
            return "".join(f" {c} " if self._is_chinese_char(ord(c)) else c for c in text)

        @staticmethod
        def _clean_text(text):
            output = []
            for char in text:
                cp = ord(char)
                if cp == 0 or cp == 0xFFFD or _is_control(char):
                    continue
                output.append(" " if _is_whitespace(char) else char)
            return "".join(output)

    def get_pairs(word):
        return {(word[i], word[i + 1]) for i in range(len(word) - 1)}

    class SlowCLIPTokenizer(PythonBackend):
        vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, vocab_file, merges_file, errors="replace", unk_token="<|endoftext|>",
                     bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>", **kwargs):
            bos_token = AddedToken(bos_token, lstrip=False, rstrip=False) if isinstance(bos_token, str) else bos_token
            eos_token = AddedToken(eos_token, lstrip=False, rstrip=False) if isinstance(eos_token, str) else eos_token
            unk_token = AddedToken(unk_token, lstrip=False, rstrip=False) if isinstance(unk_token, str) else unk_token
            self.nlp = BasicTokenizer()
            with open(vocab_file, encoding="utf-8") as vocab_handle:
                self.encoder = json.load(vocab_handle)
            self.decoder = {v: k for k, v in self.encoder.items()}
            self.errors = errors
            self.byte_encoder = bytes_to_unicode()
            self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
            with open(merges_file, encoding="utf-8") as merges_handle:
                bpe_merges = merges_handle.read().strip().split("\n")[1: 49152 - 256 - 2 + 1]
            bpe_merges = [tuple(merge.split()) for merge in bpe_merges]
            self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
            self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
            self.pat = re.compile(CLIP_PATTERN, re.IGNORECASE)
            super().__init__(errors=errors, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                             pad_token=pad_token, **kwargs)

        @property
        def vocab_size(self):
            return len(self.encoder)

        def get_vocab(self):
            return dict(self.encoder, **self.added_tokens_encoder)

        def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
            if token_ids_1 is None:
                return [self.bos_token_id] + token_ids_0 + [self.eos_token_id]
            return [self.bos_token_id] + token_ids_0 + [self.eos_token_id] * 2 + token_ids_1 + [self.eos_token_id]

        def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
            if already_has_special_tokens:
                return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
            if token_ids_1 is None:
                return [1] + [0] * len(token_ids_0) + [1]
            return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

        def bpe(self, token):
            if token in self.cache:
                return self.cache[token]
            word = tuple(token[:-1]) + (token[-1] + "</w>",)
            pairs = get_pairs(word)
            if not pairs:
                return token + "</w>"
            while True:
                bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
                if bigram not in self.bpe_ranks:
                    break
                first, second = bigram
                new_word = []
                i = 0
                while i < len(word):
                    try:
                        j = word.index(first, i)
                    except ValueError:
                        new_word.extend(word[i:])
                        break
                    else:
                        new_word.extend(word[i:j])
                        i = j
                    if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                        new_word.append(first + second)
                        i += 2
                    else:
                        new_word.append(word[i])
                        i += 1
                word = tuple(new_word)
                if len(word) == 1:
                    break
                pairs = get_pairs(word)
            word = " ".join(word)
            self.cache[token] = word
            return word

        def _tokenize(self, text):
            bpe_tokens = []
            text = " ".join(self.nlp.tokenize(text))
            for token in re.findall(self.pat, text):
                token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
                bpe_tokens.extend(self.bpe(token).split(" "))
            return bpe_tokens

        def _convert_token_to_id(self, token):
            return self.encoder.get(token, self.encoder.get(self.unk_token))

        def _convert_id_to_token(self, index):
            return self.decoder.get(index)

        def convert_tokens_to_string(self, tokens):
            text = "".join(tokens)
            byte_array = bytearray([self.byte_decoder[c] for c in text])
            return byte_array.decode("utf-8", errors=self.errors).replace("</w>", " ").strip()

    return SlowCLIPTokenizer


# ---------------------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------------------


def record(tok, prompts: list[str], with_decode: bool) -> dict:
    ids = [tok(p)["input_ids"] for p in prompts]
    padded = [tok(p, padding="max_length", max_length=MAX_LENGTH, truncation=True) for p in prompts]
    out = {
        "ids": ids,
        "padded": [enc["input_ids"] for enc in padded],
        "paddedMask": [enc["attention_mask"] for enc in padded],
    }
    for enc in padded:
        assert len(enc["input_ids"]) == MAX_LENGTH and len(enc["attention_mask"]) == MAX_LENGTH
    batches = [list(range(i, min(i + 7, len(prompts)))) for i in range(0, len(prompts), 7)]
    out["batches"] = []
    for batch in batches[::5]:
        texts = [prompts[i] for i in batch]
        longest = tok(texts, padding="longest", truncation=True)
        unpadded_truncated = tok(texts, padding=False, truncation=True, max_length=20)
        out["batches"].append({"indices": batch, "ids": longest["input_ids"], "mask": longest["attention_mask"],
                               "truncated20": unpadded_truncated["input_ids"]})
    if with_decode:
        out["decoded"] = [tok.decode(i) for i in ids]
        out["decodedSkip"] = [tok.decode(i, skip_special_tokens=True) for i in ids]
    return out


CONFIG_VARIANT_PROMPTS = [
    "a sks face", "<|startoftext|> hi! <|endoftext|>", "<|STARTOFTEXT|> a <|ENDOFTEXT|>", "wow!!",
    "  <|endoftext|>  padded  <|startoftext|>  ", "x<|endoftext|>y", "<|EndOfText|>!",
]


def config_variants(sd1: pathlib.Path, out_dir: pathlib.Path, tmp: pathlib.Path, fast_cls) -> dict:
    """How transformers resolves special tokens (which ones are matched before/after normalisation, which pad)
    from the config files: recorded so the TypeScript loader can be held to the same rules."""
    def at(content, normalized=True, **extra):
        return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
                "single_word": False, **extra}

    def typed(content, normalized=True, **extra):
        return {"__type": "AddedToken", **at(content, normalized, **extra)}

    variants = {
        "strings": ({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                     "unk_token": "<|endoftext|>"}, {"model_max_length": 77}),
        "none": (None, None),
        "only-special-map": ({"bos_token": at("<|startoftext|>"), "eos_token": at("<|endoftext|>"),
                              "pad_token": "!", "unk_token": at("<|endoftext|>")}, None),
        "only-config": (None, {"pad_token": "!", "model_max_length": 50, "bos_token": typed("<|startoftext|>", False)}),
        "not-normalized": ({"bos_token": at("<|startoftext|>", False), "eos_token": at("<|endoftext|>", False),
                            "pad_token": "!", "unk_token": at("<|endoftext|>", False)}, {"model_max_length": 77}),
        "map-overrides-config": ({"bos_token": at("<|startoftext|>", False), "eos_token": at("<|endoftext|>", False),
                                  "pad_token": "<|endoftext|>", "unk_token": at("<|endoftext|>", True)},
                                 {"model_max_length": 77, "pad_token": "!"}),
        "added-tokens-decoder": (None, {"model_max_length": 77, "pad_token": "!", "bos_token": "<|startoftext|>",
                                        "eos_token": "<|endoftext|>",
                                        "added_tokens_decoder": {"0": at("!", False, special=True),
                                                                 "5181": at("<|startoftext|>", True, special=True)}}),
        "strip": ({"bos_token": at("<|startoftext|>", False, lstrip=True, rstrip=True),
                   "eos_token": at("<|endoftext|>", True, rstrip=True), "pad_token": at("<|endoftext|>", True, rstrip=True),
                   "unk_token": at("<|endoftext|>", True, rstrip=True)}, {"model_max_length": 77}),
    }
    results = {}
    for name, (special_map, config) in variants.items():
        if config and "added_tokens_decoder" in config:  # ids must be this vocabulary's
            vocab = json.loads((sd1 / "vocab.json").read_text(encoding="utf-8"))
            config["added_tokens_decoder"] = {str(vocab[t["content"]]): t for t in config["added_tokens_decoder"].values()}
        full = tmp / f"variant-{name}"
        full.mkdir()
        shutil.copy(sd1 / "vocab.json", full)
        shutil.copy(sd1 / "merges.txt", full)
        only = out_dir / "variants" / name
        only.mkdir(parents=True)
        for folder in (full, only):
            if special_map is not None:
                (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2), encoding="utf-8")
            if config is not None:
                (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        tok = fast_cls.from_pretrained(str(full))
        results[name] = {
            "bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id,
            "modelMaxLength": tok.model_max_length if tok.model_max_length < 1e20 else None,
            "ids": [tok(p)["input_ids"] for p in CONFIG_VARIANT_PROMPTS],
        }
    return {"prompts": CONFIG_VARIANT_PROMPTS, "results": results}


def generate(out_dir: pathlib.Path) -> None:
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # silence "sequence length is longer than 77": long prompts are on purpose

    slow_cls = slow_tokenizer_class()
    prompts = parse_prompts(PROMPTS.read_text(encoding="utf-8"))
    vocab, merges = build_vocab()
    fixture = {"prompts": prompts, "numMerges": len(merges), "vocabSize": len(vocab), "variants": {}}
    tmp = out_dir / ".tmp"
    tmp.mkdir()
    report = []
    for name, pad in (("sd1", "<|endoftext|>"), ("sd2", "!")):
        folder = out_dir / name
        write_clip_folder(folder, vocab, merges, pad)
        fast = CLIPTokenizer.from_pretrained(str(folder))
        fast2 = CLIPTokenizerFast.from_pretrained(str(folder))
        slow = slow_cls.from_pretrained(str(folder))
        assert fast.is_fast and not slow.is_fast
        fast_rec, slow_rec = record(fast, prompts, True), record(slow, prompts, False)
        assert record(fast2, prompts, True) == fast_rec, "CLIPTokenizerFast differs from CLIPTokenizer"
        disagree = [i for i in range(len(prompts)) if fast_rec["ids"][i] != slow_rec["ids"][i]]
        report.append(f"{name}: slow and fast disagree on {len(disagree)} of {len(prompts)} prompts")
        fixture["variants"][name] = {
            "bos": fast.bos_token_id, "eos": fast.eos_token_id, "pad": fast.pad_token_id,
            "unk": fast.unk_token_id, "modelMaxLength": fast.model_max_length, "vocabSize": fast.vocab_size,
            "len": len(fast), "fast": fast_rec, "slow": slow_rec, "slowFastDisagree": disagree,
        }
        assert (slow.bos_token_id, slow.eos_token_id, slow.pad_token_id) == (fast.bos_token_id, fast.eos_token_id,
                                                                              fast.pad_token_id)
        if name == "sd2":  # transformers' own serialisation: tokenizer.json + tokenizer_config.json
            saved = out_dir / "sd2-saved"
            fast.save_pretrained(str(saved))
            for extra in ("vocab.json", "merges.txt", "special_tokens_map.json"):
                (saved / extra).unlink(missing_ok=True)
            again = CLIPTokenizer.from_pretrained(str(saved))
            assert [again(p)["input_ids"] for p in prompts] == fast_rec["ids"], "sd2-saved reloads differently"
    fixture["configVariants"] = config_variants(out_dir / "sd1", out_dir, tmp, CLIPTokenizer)
    shutil.rmtree(tmp)
    (out_dir / "expected.json").write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    print("oracle tokenizer: " + f"{len(prompts)} prompts, {len(merges)} merges; " + "; ".join(report), file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-corpus"]:
        write_corpus()
    else:
        print("usage: fixtures_tokenizer.py --write-corpus  (fixtures: python test/oracle/generate.py tokenizer)")
