/**
 * Configs checked by zod schemas, with errors that name the file, the key, the value and what was expected.
 *
 * Every config (a diffusers config.json, a scheduler config, the LiDB sizes, a DreamBooth run, the base-model
 * recipe) is one zod schema: its TypeScript type (z.output / z.input), its defaults and its checks come from
 * that one definition. This module turns zod's issues into one message in the form the whole project uses,
 *
 *     unet/config.json: block_out_channels[2] must be a positive integer, got -3
 *     DDPMScheduler: thresholding=true is not supported by this implementation (supported: false)
 *     base model recipe: vae.steps is missing; it must be a positive integer
 *
 * and holds the few field schemas every config shares. A field states what it expects once, as its error
 * ("a positive integer"); zod applies it to the field's own checks too, so a string, 1.5 and -1 all read the
 * same. Fields without a stated phrase get one derived from the issue ("a number", "≥ 0", "one of …").
 */
import { z } from "zod";

/** A config that does not pass its schema (the default error class of `parseWithSchema`). */
export class SchemaError extends Error {
  override name = "SchemaError";
}

/** How a value is shown in messages: JSON, with NaN/±Infinity as written, long values cut short. */
export function showValue(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "bigint") return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/** A key path as written in messages: `block_out_channels[2]`, `vae.steps`, `"lidb.a"`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else {
      const name = typeof key === "symbol" ? key.toString() : /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
      text += text === "" ? name : `.${name}`;
    }
  }
  return text;
}

/** The params a `supported` field puts on its issue, so that the message says "not supported". */
interface UnsupportedParams {
  unsupported: true;
}
const UNSUPPORTED: UnsupportedParams = { unsupported: true };

const isUnsupported = (issue: z.core.$ZodIssue): boolean =>
  issue.code === "custom" && (issue.params as Partial<UnsupportedParams> | undefined)?.unsupported === true;

const describeBound = (bound: unknown, inclusive: boolean | undefined, below: boolean): string =>
  `${below ? (inclusive ? "≤" : "<") : (inclusive ? "≥" : ">")} ${showValue(bound)}`;

const TYPE_PHRASES: Record<string, string> = {
  number: "a number", int: "an integer", boolean: "true or false", string: "a string", array: "a list",
  tuple: "a list", object: "an object", record: "an object", null: "null", bigint: "an integer",
};

/**
 * What an issue expected, for fields that state no phrase of their own: zod's per-parse error map, so that a
 * field's own `error` always wins.
 */
function expectedPhrase(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return TYPE_PHRASES[issue.expected] ?? `a ${issue.expected}`;
    case "too_small":
      if (issue.origin === "array" || issue.origin === "string" || issue.origin === "set") {
        return Number(issue.minimum) === 1 ? `a non-empty ${issue.origin === "string" ? "string" : "list"}` : `at least ${String(issue.minimum)} long`;
      }
      return describeBound(issue.minimum, issue.inclusive, false);
    case "too_big":
      if (issue.origin === "array" || issue.origin === "string" || issue.origin === "set") return `at most ${String(issue.maximum)} long`;
      return describeBound(issue.maximum, issue.inclusive, true);
    case "invalid_value":
      return issue.values.length === 1 ? showValue(issue.values[0]) : `one of ${issue.values.map(showValue).join(", ")}`;
    case "not_multiple_of":
      return `a multiple of ${String(issue.divisor)}`;
    case "invalid_format":
      return issue.format === "regex" && "pattern" in issue ? `a string matching ${String(issue.pattern)}` : `a ${issue.format} string`;
    case "invalid_union":
      return "one of the allowed forms";
    default:
      return undefined;
  }
}

/** One issue as one sentence: where, which key, what was expected, what was given. */
export function describeIssue(issue: z.core.$ZodIssue, source?: string): string {
  const key = formatPath(issue.path);
  const subject = [source, key].filter((part) => part !== undefined && part !== "").join(": ") || "the value";
  if (isUnsupported(issue)) {
    const given = key === "" ? showValue(issue.input) : `${key}=${showValue(issue.input)}`;
    return `${source === undefined ? "" : `${source}: `}${given} is not supported by this implementation (supported: ${issue.message})`;
  }
  if (issue.code === "unrecognized_keys") return `${subject} has unknown keys: ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
  if (issue.code === "invalid_type" && issue.input === undefined) return `${subject} is missing; it must be ${issue.message}`;
  return `${subject} must be ${issue.message}, got ${showValue(issue.input)}`;
}

/** A zod error as one message: its first issue, and how many more there were. */
export function describeSchemaError(error: z.ZodError, source?: string): string {
  const [first, ...rest] = error.issues;
  if (first === undefined) return `${source ?? "the value"} is invalid`;
  return describeIssue(first, source) + (rest.length === 0 ? "" : ` (and ${rest.length} more problem${rest.length === 1 ? "" : "s"})`);
}

export interface SchemaParseOptions {
  /** Where the value came from, first in every message: a file's path, or a name ("DDIMScheduler"). */
  source?: string;
  /** The error class to throw (default SchemaError); modules keep their own (UNet2DConditionConfigError, …). */
  error?: new (message: string) => Error;
}

/** The parsed value (defaults filled in), or an error naming source, key, value and expectation. */
export function parseWithSchema<S extends z.ZodType>(schema: S, value: unknown, options: SchemaParseOptions = {}): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true, error: expectedPhrase });
  if (result.success) return result.data;
  throw new (options.error ?? SchemaError)(describeSchemaError(result.error, options.source));
}

/**
 * Cross-field checks on an object (diffusers' `_check_config` kind: one entry per block, a divisor of every
 * width): they run only once every field is valid, so they see the types the schema promises.
 */
export function whenFieldsValid(payload: { issues: readonly unknown[] }): boolean {
  return payload.issues.length === 0;
}

/** Adds a cross-field check's issue: the key it blames, the value there and what was expected. */
export function addFieldIssue<T>(ctx: z.RefinementCtx<T>, key: PropertyKey | readonly PropertyKey[], input: unknown, expected: string): void {
  const path = typeof key === "object" ? [...key] : [key];
  ctx.addIssue({ code: "custom", path, input, message: expected });
}

/**
 * The defaults of an object schema's fields (those with `.default` or `.prefault`), by key in shape order: a
 * table derived from the schema, for code that must know which keys a default would fill.
 */
export function schemaDefaults(schema: z.ZodObject | z.ZodType): Record<string, unknown> {
  let inner: z.ZodType = schema;
  while (!(inner instanceof z.ZodObject)) {
    const def = inner.def as { in?: z.ZodType; schema?: z.ZodType; innerType?: z.ZodType };
    const next = def.in ?? def.schema ?? def.innerType;
    if (next === undefined) throw new TypeError("schemaDefaults: not an object schema");
    inner = next;
  }
  const defaults: Record<string, unknown> = {};
  for (const [key, field] of Object.entries((inner as z.ZodObject).shape)) {
    const def = (field as z.ZodType).def as { type: string; defaultValue?: unknown };
    if (def.type === "default" || def.type === "prefault") defaults[key] = def.defaultValue;
  }
  return defaults;
}

type Literal = string | number | boolean | null;

/**
 * A value this port supports out of those its format allows (diffusers' "fourier" time embeddings, Imagen's
 * thresholding): anything else is "not supported by this implementation", naming what is. `note` replaces the
 * plain list of values in the message.
 */
export function supported<const T extends readonly Literal[]>(values: T, note?: string): z.ZodType<T[number], T[number]> {
  return z.custom<T[number]>((value) => (values as readonly unknown[]).includes(value), unsupportedUnless(note ?? values.map(showValue).join(", ")));
}

/** The params of a `.refine` whose failure means "not supported by this implementation (supported: `note`)". */
export function unsupportedUnless(note: string): { error: string; params: UnsupportedParams } {
  return { error: note, params: UNSUPPORTED };
}

/** An integer ≥ 1. */
export function positiveInt(expected = "a positive integer") {
  return z.number({ error: expected }).int().positive();
}

/** An integer ≥ 0. */
export function nonNegativeInt(expected = "a non-negative integer") {
  return z.number({ error: expected }).int().nonnegative();
}

/** A finite number (zod's numbers are finite: NaN and ±Infinity are refused). */
export function finiteNumber(expected = "a number") {
  return z.number({ error: expected });
}

/** A number that is not NaN; ±Infinity allowed (Python's json writes them, e.g. `lambda_min_clipped: -inf`). */
export function extendedNumber(expected = "a number") {
  return z.union([z.number(), z.literal([Infinity, -Infinity])], { error: expected });
}

/** A probability: a number in [0, 1]. */
export function probability(expected = "a probability in [0, 1]") {
  return z.number({ error: expected }).min(0).max(1);
}
