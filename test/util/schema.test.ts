// src/util/schema.ts: zod issues as one message naming the source, the key path, the value and what was
// expected; the shared field schemas; the defaults table of an object schema.
import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import {
  addFieldIssue, extendedNumber, formatPath, parseWithSchema, positiveInt, probability, schemaDefaults, SchemaError, showValue,
  supported, whenFieldsValid,
} from "../../src/util/schema.js";

const config = z.object({
  size: positiveInt().default(8),
  rate: probability().default(0.5),
  mode: z.enum(["fast", "exact"]).default("fast"),
  name: z.string(),
  kind: supported(["plain", null], "\"plain\" or null (no other kind here)").default("plain"),
  widths: z.array(positiveInt()).default(() => [1, 2]),
  nested: z.object({ depth: positiveInt().default(1) }).prefault({}),
}).superRefine((c, ctx) => {
  if (c.widths.length !== c.size) addFieldIssue(ctx, "widths", c.widths, `one entry per size (${c.size})`);
}, { when: whenFieldsValid });

const parse = (value: unknown): unknown => parseWithSchema(config, value, { source: "model/config.json" });
const fails = (value: unknown, message: string | RegExp): void => {
  assert.throws(() => parse(value), (error: Error) => {
    assert.ok(error instanceof SchemaError, `a SchemaError, got ${String(error)}`);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  }, JSON.stringify(value));
};

test("defaults fill in what is not given, nested objects included", () => {
  assert.deepEqual(parse({ name: "a", size: 2 }), {
    size: 2, rate: 0.5, mode: "fast", name: "a", kind: "plain", widths: [1, 2], nested: { depth: 1 },
  });
  // Unknown keys are dropped (z.object strips), as diffusers ignores keys a model does not take.
  assert.deepEqual(parse({ name: "a", size: 2, _diffusers_version: "0.42.1", nested: { depth: 3 } }), {
    size: 2, rate: 0.5, mode: "fast", name: "a", kind: "plain", widths: [1, 2], nested: { depth: 3 },
  });
  assert.deepEqual(schemaDefaults(config), { size: 8, rate: 0.5, mode: "fast", kind: "plain", widths: [1, 2], nested: {} });
});

test("each kind of problem is one message naming the file, the key, the value and what was expected", () => {
  const valid = { name: "a", size: 2 };
  fails({ ...valid, size: "2" }, `model/config.json: size must be a positive integer, got "2"`);
  fails({ ...valid, size: 1.5 }, "model/config.json: size must be a positive integer, got 1.5");
  fails({ size: 2 }, "model/config.json: name is missing; it must be a string");
  fails({ ...valid, rate: 1.5 }, "model/config.json: rate must be a probability in [0, 1], got 1.5");
  fails({ ...valid, mode: "slow" }, `model/config.json: mode must be one of "fast", "exact", got "slow"`);
  fails({ ...valid, kind: "fancy" }, `model/config.json: kind="fancy" is not supported by this implementation (supported: "plain" or null (no other kind here))`);
  fails({ ...valid, widths: [1, -3] }, "model/config.json: widths[1] must be a positive integer, got -3");
  fails({ ...valid, nested: { depth: 0 } }, "model/config.json: nested.depth must be a positive integer, got 0");
  fails({ ...valid, size: 3 }, "model/config.json: widths must be one entry per size (3), got [1,2]");
  fails([], "model/config.json must be an object, got []");
  // Several problems: the first is named, the rest counted; cross-field checks wait for valid fields.
  fails({ size: 0, rate: 2 }, /^model\/config\.json: size must be a positive integer, got 0 \(and 2 more problems\)$/);
});

test("a module's own error class, no source, and the values shown as written", () => {
  class ConfigError extends Error {}
  assert.throws(() => parseWithSchema(positiveInt(), -1, { error: ConfigError }), (error: Error) => error instanceof ConfigError && error.message === "the value must be a positive integer, got -1");
  assert.equal(parseWithSchema(extendedNumber(), -Infinity), -Infinity);
  assert.throws(() => parseWithSchema(extendedNumber(), Number.NaN, { source: "s" }), /^SchemaError: s must be a number, got NaN$/);
  assert.equal(showValue(-Infinity), "-Infinity");
  assert.equal(showValue(2n ** 64n), "18446744073709551616");
  assert.equal(showValue(undefined), "undefined");
  const long = showValue(Array.from({ length: 1000 }, (_, i) => i));
  assert.ok(long.length === 118 && long.endsWith("…"), long);
  assert.equal(formatPath(["down_block_types", 2]), "down_block_types[2]");
  assert.equal(formatPath(["text_config", "hidden_act"]), "text_config.hidden_act");
  assert.equal(formatPath(["lidb.a"]), `"lidb.a"`);
  assert.equal(formatPath([]), "");
});
