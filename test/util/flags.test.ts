// src/util/flags.ts on its own: typed values and defaults from a spec, range-checked numbers and choices with
// messages naming flag and value, one-line errors for unknown flags (nearest by edit distance), missing values,
// switches given values and stray arguments; the help rendered from the same spec.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defineCommand, describeNumber, editDistance, FlagError, formatHelp, HelpRequested, nearestName, parseFlags } from "../../src/util/flags.js";

const SPEC = defineCommand({
  name: "toy",
  summary: "a command for tests",
  usage: "[flags] <file>",
  positionals: true,
  flags: {
    steps: { type: "integer", min: 1, default: 25, description: "steps" },
    rate: { type: "number", above: 0, description: "a rate", defaultText: "the model's" },
    size: { type: "integer", min: 8, max: 2048, default: 64, value: "<px>", description: "a size" },
    dtype: { type: "string", choices: ["float32", "float16"], default: "float32", description: "a dtype" },
    out: { type: "string", short: "o", value: "<folder>", description: "where" },
    lidb: { type: "string", multiple: true, value: "<file>", description: "files" },
    "dry-run": { type: "boolean", description: "do nothing" },
  },
  examples: ["hdb toy --steps 3 a.png"],
});

test("values are typed, defaulted and checked", () => {
  const none = parseFlags(SPEC, []);
  assert.deepEqual(none.values, { steps: 25, rate: undefined, size: 64, dtype: "float32", out: undefined, lidb: [], "dry-run": undefined });
  const given = parseFlags(SPEC, ["a.png", "--steps", "3", "--rate=1e-3", "-o", "x", "--lidb", "a", "--lidb", "b:0.5", "--dry-run", "--dtype", "float16"]);
  assert.deepEqual(given.values, { steps: 3, rate: 1e-3, size: 64, dtype: "float16", out: "x", lidb: ["a", "b:0.5"], "dry-run": true });
  assert.deepEqual(given.positionals, ["a.png"]);
  assert.equal(parseFlags(SPEC, ["--steps", "1", "--steps", "2"]).values.steps, 2, "the last one wins, as in parseArgs");
  for (const [args, message] of [
    [["--steps", "0"], "--steps must be a positive integer, got '0'"],
    [["--steps", "2.5"], "--steps must be a positive integer, got '2.5'"],
    [["--steps", "many"], "--steps must be a positive integer, got 'many'"],
    [["--steps="], "--steps must be a positive integer, got ''"],
    [["--rate", "0"], "--rate must be a number > 0, got '0'"],
    [["--rate", "Infinity"], "--rate must be a number > 0, got 'Infinity'"],
    [["--size", "4096"], "--size must be an integer in [8, 2048], got '4096'"],
    [["--dtype", "int8"], "--dtype must be one of float32, float16, got 'int8'"],
    // A negative number after a numeric flag is its value, so the range check speaks, not the tokeniser.
    [["--steps", "-1"], "--steps must be a positive integer, got '-1'"],
    [["--rate", "-1"], "--rate must be a number > 0, got '-1'"],
    [["--rate", "-.5"], "--rate must be a number > 0, got '-.5'"],
    [["--rate", "-Infinity"], "--rate must be a number > 0, got '-Infinity'"],
    [["--size", "-1e3"], "--size must be an integer in [8, 2048], got '-1e3'"],
    [["--steps", "18446744073709551616"], "--steps must be a positive integer of at most 9007199254740991 (2^53 − 1, the largest integer held exactly), got '18446744073709551616'"],
  ] as const) {
    assert.throws(() => parseFlags(SPEC, [...args]), (error: Error) => !(error instanceof FlagError) && error.message === message, args.join(" "));
  }
});

test("seeds take exactly PyTorch's manual_seed range, as BigInts", () => {
  const seeds = defineCommand({ name: "seeds", summary: "s", usage: "", flags: { seed: { type: "seed", description: "a seed" } }, examples: ["hdb seeds"] });
  for (const [text, value] of [["0", 0n], ["-1", -1n], ["18446744073709551615", 2n ** 64n - 1n], ["-9223372036854775808", -(2n ** 63n)], ["9007199254740993", 9007199254740993n]] as const) {
    assert.equal(parseFlags(seeds, ["--seed", text]).values.seed, value, text);
  }
  for (const text of ["18446744073709551616", "-9223372036854775809", "1.5", "1e3", "", "abc"]) {
    assert.throws(() => parseFlags(seeds, ["--seed", text]), (error: Error) =>
      error.message === `--seed must be an integer in [-9223372036854775808, 18446744073709551615] (PyTorch's manual_seed range), got '${text}'`, text);
  }
  assert.match(formatHelp(seeds), /--seed <n> {2,}a seed/);
});

test("mistakes in the command line are FlagErrors with the whole line", () => {
  const cases: [string[], string][] = [
    [["--step", "3"], "hdb toy: unknown flag --step (did you mean --steps?)"],
    [["--dryrun"], "hdb toy: unknown flag --dryrun (did you mean --dry-run?)"],
    [["-x"], "hdb toy: unknown flag -x (the nearest is --out; hdb toy --help lists them all)"],
    [["--completely-different"], "hdb toy: unknown flag --completely-different (the nearest is --dry-run; hdb toy --help lists them all)"],
    [["--out"], "hdb toy: --out needs a value"],
    [["-o"], "hdb toy: -o needs a value"],
    [["--out", "-1"], "hdb toy: --out needs a value, got the flag-like '-1' (write --out=-1 if that is the value)"],
    [["--dry-run=no"], "hdb toy: --dry-run takes no value, got '--dry-run=no'"],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseFlags(SPEC, args), (error: Error) => error instanceof FlagError && error.message === message, args.join(" "));
  }
  const noPositionals = defineCommand({ name: "bare", summary: "s", usage: "", flags: {}, examples: ["hdb bare"] });
  assert.throws(() => parseFlags(noPositionals, ["x"]), /^FlagError: hdb bare: unexpected argument 'x' \(this command takes flags only; see hdb bare --help\)$/);
  assert.throws(() => parseFlags(noPositionals, ["--x"]), /^FlagError: hdb bare: unknown flag --x \(this command takes no flags; see hdb bare --help\)$/);
  assert.throws(() => defineCommand({ name: "clash", summary: "s", usage: "", flags: { help: { type: "boolean", description: "d" } }, examples: [] }), /reserved/);
});

test("--help and -h anywhere ask for the help, before any other check", () => {
  for (const args of [["--help"], ["-h"], ["--steps", "0", "--help"], ["--nonsense", "-h"]]) {
    assert.throws(() => parseFlags(SPEC, args), (error: Error) => error instanceof HelpRequested && error.text === formatHelp(SPEC), args.join(" "));
  }
  assert.deepEqual(parseFlags(SPEC, ["--", "--help"]).positionals, ["--help"], "after -- it is an argument");
});

test("the help lists usage, every flag with its placeholder and default, and the examples", () => {
  assert.equal(formatHelp(SPEC), `hdb toy: a command for tests

usage: hdb toy [flags] <file>

flags:
      --steps <n>              steps (default: 25)
      --rate <x>               a rate (default: the model's)
      --size <px>              a size (default: 64)
      --dtype float32|float16  a dtype (default: float32)
  -o, --out <folder>           where
      --lidb <file>            files (repeatable)
      --dry-run                do nothing
  -h, --help                   print this help and exit

example:
  hdb toy --steps 3 a.png
`);
});

test("a flag too long for the column has its description on the next line", () => {
  const spec = defineCommand({
    name: "wide", summary: "s", usage: "",
    flags: {
      "a-very-long-flag-name": { type: "string", value: "<folder|manifest.json>", description: "long" },
      short: { type: "boolean", description: "short" },
    },
    examples: ["hdb wide", "hdb wide --short"],
  });
  const help = formatHelp(spec);
  assert.ok(help.includes(`      --a-very-long-flag-name <folder|manifest.json>\n${" ".repeat(42)}long\n`), help);
  assert.ok(help.includes(`      --short${" ".repeat(29)}short\n`), help);
  assert.ok(help.endsWith("examples:\n  hdb wide\n  hdb wide --short\n"));
});

test("edit distance counts a swap of neighbours as one edit; the nearest name wins", () => {
  assert.equal(editDistance("learnig-rate", "learning-rate"), 1);
  assert.equal(editDistance("laerning-rate", "learning-rate"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(nearestName("seeds", ["steps", "seed", "size"]), "seed");
  assert.equal(nearestName("x", []), undefined);
  assert.equal(describeNumber({ type: "integer", min: 0 }), "an integer ≥ 0");
  assert.equal(describeNumber({ type: "number" }), "a number");
});
