/**
 * Command-line flags from one declarative spec per command: the spec gives both the parsing and the help text,
 * so the two cannot drift apart.
 *
 *     const SPEC = defineCommand({
 *       name: "demo", summary: "images from the bundled model", usage: "[flags]",
 *       flags: { steps: { type: "integer", min: 1, default: 25, description: "denoising steps per image" } },
 *       examples: ["hdb demo --steps 10"],
 *     });
 *     const { values } = parseFlags(SPEC, argv);   // values.steps: number
 *
 * Tokenising is Node's own `util.parseArgs` (maintained with Node, no dependency); this module adds what it
 * lacks: typed and range-checked numbers, choices, defaults, `--help`/`-h` rendered from the spec, and one-line
 * errors that name the flag (an unknown flag with the nearest valid one). Imports nothing outside src/util/.
 */
import { parseArgs } from "node:util";

/**
 * "seed": an integer in PyTorch's manual_seed range, [-2^63, 2^64 − 1], parsed as a BigInt (a JS number holds
 * integers exactly only up to 2^53, and seeds up to 2^64 − 1 are common in the wild).
 */
export type FlagType = "string" | "boolean" | "number" | "integer" | "seed";

export interface FlagSpec {
  readonly type: FlagType;
  /** One line, shown in the help. */
  readonly description: string;
  /** Applied when the flag is absent (and shown in the help). */
  readonly default?: string | number | boolean;
  /** Shown in the help as the default when the command computes it (not applied by the parser). */
  readonly defaultText?: string;
  /** A one-letter alias ("o" for -o). */
  readonly short?: string;
  /** Repeatable: the values in order (string flags only). */
  readonly multiple?: boolean;
  /** The value's placeholder in the help ("<folder>"); by default from the type. */
  readonly value?: string;
  /** string: the allowed values. */
  readonly choices?: readonly string[];
  /** number/integer: inclusive lower bound. */
  readonly min?: number;
  /** number: exclusive lower bound. */
  readonly above?: number;
  /** number/integer: inclusive upper bound. */
  readonly max?: number;
}

export interface CommandSpec {
  /** The command as typed after `hdb`: "train-lidb", "miniworld render". */
  readonly name: string;
  /** One line: what the command does (listed by `hdb --help`). */
  readonly summary: string;
  /** The usage line after "hdb <name> ". */
  readonly usage: string;
  /** Paragraphs after the usage line: what is written, how to resume, … */
  readonly details?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Whether the command takes positional arguments (it checks their number itself). */
  readonly positionals?: boolean;
  readonly examples: readonly string[];
}

type Scalar<F extends FlagSpec> = F["type"] extends "boolean" ? boolean : F["type"] extends "number" | "integer" ? number
  : F["type"] extends "seed" ? bigint : string;

/** The parsed values of a spec's flags: defaulted flags are always set, repeatable ones are arrays. */
export type FlagValues<Flags extends Readonly<Record<string, FlagSpec>>> = {
  -readonly [K in keyof Flags]: Flags[K] extends { readonly multiple: true } ? Scalar<Flags[K]>[]
    : Flags[K] extends { readonly default: string | number | boolean } ? Scalar<Flags[K]> : Scalar<Flags[K]> | undefined;
};

/** A command spec with its literal types kept (so `parseFlags` types each value). */
export function defineCommand<const C extends CommandSpec>(spec: C): C {
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (name === "help" || flag.short === "h") throw new Error(`${spec.name}: --help/-h are reserved for the help text`);
    if (flag.multiple && flag.type !== "string") throw new Error(`${spec.name}: --${name} is repeatable, so it must be a string flag`);
  }
  return spec;
}

/** A mistake in the command line itself (an unknown flag, a missing value): the message is the whole line to print. */
export class FlagError extends Error {
  override name = "FlagError";
}

/** `--help` or `-h` was given: `text` is the command's help, to print before exiting with status 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
  constructor(readonly text: string) {
    super("help requested");
  }
}

/**
 * Parses `argv` by the spec. Throws HelpRequested for --help/-h, FlagError for an unknown flag, a missing
 * value or an unexpected argument, and Error("--flag must be …, got '…'") for a value of the wrong kind.
 */
export function parseFlags<const C extends CommandSpec>(spec: C, argv: readonly string[]): { values: FlagValues<C["flags"]>; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = { type: flag.type === "boolean" ? "boolean" : "string", ...(flag.short ? { short: flag.short } : {}), ...(flag.multiple ? { multiple: true } : {}) };
  }
  // Not strict: every token comes back and is checked here, so each mistake gets its own one-line message.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const where = `hdb ${spec.name}`;
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) throw new HelpRequested(formatHelp(spec));
  const raw: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      if (!spec.positionals) throw new FlagError(`${where}: unexpected argument '${token.value}' (this command takes flags only; see ${where} --help)`);
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== "option") continue;
    const flag = spec.flags[token.name];
    if (flag === undefined) throw new FlagError(`${where}: unknown flag ${token.rawName} (${suggestion(spec, token.rawName)})`);
    if (flag.type === "boolean") {
      if (token.value !== undefined) throw new FlagError(`${where}: ${token.rawName} takes no value, got '${token.rawName}=${token.value}'`);
      raw[token.name] = true;
      continue;
    }
    if (token.value === undefined) throw new FlagError(`${where}: ${token.rawName} needs a value`);
    // A negative number after a numeric flag is its value (`--guidance -5`), range-checked below like any other.
    const negativeNumber = flag.type !== "string" && NEGATIVE_NUMBER.test(token.value);
    if (!token.inlineValue && !negativeNumber && token.value.startsWith("-") && token.value.length > 1) {
      throw new FlagError(`${where}: ${token.rawName} needs a value, got the flag-like '${token.value}' (write ${token.rawName}=${token.value} if that is the value)`);
    }
    if (flag.multiple) raw[token.name] = [...((raw[token.name] as string[] | undefined) ?? []), token.value];
    else raw[token.name] = token.value;
  }
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    const given = raw[name];
    if (given === undefined) values[name] = flag.multiple ? [] : flag.default;
    else if (flag.multiple) values[name] = (given as string[]).map((text) => convert(name, flag, text));
    else values[name] = typeof given === "boolean" ? given : convert(name, flag, given as string);
  }
  return { values: values as FlagValues<C["flags"]>, positionals };
}

/** What reads as a negative number ("-1", "-0.5", "-1e3", "-.5", "-Infinity"), not as a flag. */
const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity$)/;

/** PyTorch's manual_seed range: any int64 or uint64 (a negative seed is taken modulo 2^64). */
export const SEED_MIN = -(2n ** 63n);
export const SEED_MAX = 2n ** 64n - 1n;

/** A seed as typed, checked against PyTorch's range; the error names the flag, the range and the value. */
export function parseSeed(text: string, name = "seed"): bigint {
  const value = /^[+-]?\d+$/.test(text.trim()) ? BigInt(text.trim()) : null;
  if (value === null || value < SEED_MIN || value > SEED_MAX) {
    throw new Error(`--${name} must be an integer in [${SEED_MIN}, ${SEED_MAX}] (PyTorch's manual_seed range), got '${text}'`);
  }
  return value;
}

/** What a number flag accepts, in words: "a positive integer", "an integer in [8, 2048]", "a number > 0". */
export function describeNumber(flag: Pick<FlagSpec, "type" | "min" | "max" | "above">): string {
  const kind = flag.type === "integer" || flag.type === "seed" ? "integer" : "number";
  const article = kind === "integer" ? "an" : "a";
  if (flag.min !== undefined && flag.max !== undefined) return `${article} ${kind} in [${flag.min}, ${flag.max}]`;
  if (flag.type === "integer" && flag.min === 1 && flag.max === undefined) return "a positive integer";
  if (flag.min !== undefined) return `${article} ${kind} ≥ ${flag.min}`;
  if (flag.above !== undefined) return `${article} ${kind} > ${flag.above}`;
  if (flag.max !== undefined) return `${article} ${kind} ≤ ${flag.max}`;
  return `${article} ${kind}`;
}

function convert(name: string, flag: FlagSpec, text: string): string | number | bigint {
  if (flag.type === "string") {
    if (flag.choices && !flag.choices.includes(text)) throw new Error(`--${name} must be one of ${flag.choices.join(", ")}, got '${text}'`);
    return text;
  }
  if (flag.type === "seed") return parseSeed(text, name);
  const value = Number(text);
  const inRange = (flag.min === undefined || value >= flag.min) && (flag.max === undefined || value <= flag.max) && (flag.above === undefined || value > flag.above);
  // An integer past 2^53 would silently become a neighbour (2^64 + 1 reads as 2^64): say why it is refused.
  if (flag.type === "integer" && /^[+-]?\d+$/.test(text.trim()) && !Number.isSafeInteger(value) && inRange) {
    throw new Error(`--${name} must be ${describeNumber(flag)} of at most ${Number.MAX_SAFE_INTEGER} (2^53 − 1, the largest integer held exactly), got '${text}'`);
  }
  const ok = text.trim() !== "" && Number.isFinite(value) && (flag.type !== "integer" || Number.isSafeInteger(value)) && inRange;
  if (!ok) throw new Error(`--${name} must be ${describeNumber(flag)}, got '${text}'`);
  return value;
}

/** The nearest valid flag, as "did you mean --x?" when it is close, else naming it and where the list is. */
function suggestion(spec: CommandSpec, rawName: string): string {
  const typed = rawName.replace(/^-+/, "");
  const nearest = nearestName(typed, Object.keys(spec.flags));
  if (nearest === undefined) return `this command takes no flags; see hdb ${spec.name} --help`;
  const close = editDistance(typed, nearest) <= Math.max(2, Math.floor(typed.length / 3));
  return close ? `did you mean --${nearest}?` : `the nearest is --${nearest}; hdb ${spec.name} --help lists them all`;
}

/** The candidate nearest to `typed` by edit distance (ties: the first in order); undefined when there are none. */
export function nearestName(typed: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(typed, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]![j]!;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      rows[i]![j] = best;
    }
  }
  return at(a.length, b.length);
}

function placeholder(flag: FlagSpec): string {
  if (flag.type === "boolean") return "";
  if (flag.value) return flag.value;
  if (flag.choices) return flag.choices.join("|");
  return flag.type === "string" ? "<text>" : flag.type === "integer" || flag.type === "seed" ? "<n>" : "<x>";
}

/** The help text of a command: usage, details, every flag with its default, examples. */
export function formatHelp(spec: CommandSpec): string {
  const rows: [string, string][] = Object.entries(spec.flags).map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : "    "}--${name}${flag.type === "boolean" ? "" : ` ${placeholder(flag)}`}`;
    const shown = flag.defaultText ?? (flag.default === undefined || flag.type === "boolean" ? undefined : String(flag.default));
    const notes = [
      ...(flag.multiple ? ["repeatable"] : []),
      ...(shown === undefined ? [] : [`default: ${shown}`]),
    ];
    return [left, `${flag.description}${notes.length ? ` (${notes.join("; ")})` : ""}`];
  });
  rows.push(["-h, --help", "print this help and exit"]);
  // Descriptions in one column; a flag too long for it has its description on the next line.
  const width = Math.min(38, Math.max(...rows.map(([left]) => left.length))) + 2;
  const lines = [
    `hdb ${spec.name}: ${spec.summary}`,
    "",
    `usage: hdb ${spec.name}${spec.usage ? ` ${spec.usage}` : ""}`,
    ...(spec.details ? ["", spec.details.trim()] : []),
    "",
    "flags:",
    ...rows.map(([left, right]) => (left.length + 2 > width ? `  ${left}\n${" ".repeat(width + 2)}${right}` : `  ${left.padEnd(width)}${right}`)),
    "",
    spec.examples.length === 1 ? "example:" : "examples:",
    ...spec.examples.map((example) => `  ${example}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** The help of a group of commands (`hdb --help`, `hdb miniworld --help`): each command with its summary. */
export function formatCommandList(title: string, usage: string, commands: readonly CommandSpec[], examples: readonly string[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 4;
  const lines = [
    title,
    "",
    usage,
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    `hdb <command> --help (or -h) prints a command's flags, their defaults and examples.`,
    "",
    examples.length === 1 ? "example:" : "examples:",
    ...examples.map((example) => `  ${example}`),
  ];
  return `${lines.join("\n")}\n`;
}
