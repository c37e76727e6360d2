/**
 * Reading the UNet oracle (test/oracle/fixtures_unet.py) for the blocks, UNet-block and UNet tests: the
 * cases.json index and each case's safetensors (parameters, inputs, outputs, gradients).
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { grad, loadSafetensors, tidy, type Tensor } from "../../src/engine/index.js";
import type { Module } from "../../src/engine/nn/index.js";
import { maxAbsDiff } from "../engine/nn-fixtures.js";

export interface OracleCase {
  name: string;
  kind: string;
  /** diffusers' constructor arguments (snake_case). */
  kwargs: Record<string, unknown>;
  /** Non-tensor forward arguments (snake_case). */
  call: Record<string, unknown>;
  outputs: number;
  grad_params: string[];
}

export interface UnetRun {
  timestep: number | null;
  timestep_shape: number[] | null;
  masked: boolean;
}

export interface UnetOracle {
  cases: OracleCase[];
  unets: Record<string, { config: Record<string, unknown>; runs: UnetRun[]; grad_timestep: number }>;
  tiny_sd: string[];
}

/** A path under test/fixtures/generated/unet/ (the tests run from dist/test/models). */
export function unetFixturePath(file: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/generated/unet/${file}`, import.meta.url));
}

/** A path under test/fixtures/generated/ (for the tiny pipelines). */
export function generatedPath(file: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/generated/${file}`, import.meta.url));
}

export function readUnetOracle(): UnetOracle {
  const path = unetFixturePath("cases.json");
  if (!existsSync(path)) throw new Error(`missing oracle fixture ${path}: run \`.venv/bin/python test/oracle/generate.py unet\``);
  return JSON.parse(readFileSync(path, "utf8")) as UnetOracle;
}

/** The tensors of one safetensors file of the fixture (the caller disposes them, or uses tidy). */
export function loadUnetTensors(file: string): Map<string, Tensor> {
  return loadSafetensors(unetFixturePath(file)).tensors;
}

/** { in_channels: 8, "_x": 1 } → { inChannels: 8 }: diffusers' keyword arguments as the ports' options. */
export function camelizeKeys(record: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (key.startsWith("_")) continue;
    result[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return result;
}

/** "param.<key>" entries as a state dict. */
export function parameterState(tensors: Map<string, Tensor>): Map<string, Tensor> {
  const state = new Map<string, Tensor>();
  for (const [key, value] of tensors) if (key.startsWith("param.")) state.set(key.slice("param.".length), value);
  return state;
}

export function get(tensors: Map<string, Tensor>, key: string): Tensor {
  const tensor = tensors.get(key);
  if (!tensor) throw new Error(`the fixture has no tensor "${key}" (it has: ${[...tensors.keys()].join(", ")})`);
  return tensor;
}

/** Inputs that require grad: fresh leaves copied from the fixture. */
export function leaf(tensor: Tensor): Tensor {
  return tensor.detach().clone().requiresGrad_(true);
}

export interface ParityReport {
  output: number;
  grads: Record<string, number>;
}

/**
 * Runs forward on the leaves, compares each output with "output"/"output.<i>", then the gradients of
 * sum(output · grad_output) w.r.t. the leaves (named) with "grad.<name>". Returns the max abs errors.
 */
export function compareWithOracle(
  tensors: Map<string, Tensor>, leaves: Map<string, Tensor>, outputs: Tensor[], module?: Module, gradParams: string[] = [],
): ParityReport {
  return tidy(() => {
    const single = outputs.length === 1;
    let output = 0;
    const gradOutputs: Tensor[] = [];
    outputs.forEach((out, i) => {
      output = Math.max(output, maxAbsDiff(out, get(tensors, single ? "output" : `output.${i}`)));
      gradOutputs.push(get(tensors, single ? "grad_output" : `grad_output.${i}`));
    });
    const params = new Map(module?.namedParameters() ?? []);
    const targets = [...leaves.values(), ...gradParams.map((p) => params.get(p)!)];
    const names = [...leaves.keys(), ...gradParams.map((p) => `param.${p}`)];
    const grads: Record<string, number> = {};
    if (targets.length > 0) {
      const results = grad(outputs, targets, { gradOutputs, allowUnused: true });
      results.forEach((g, i) => {
        const expected = tensors.get(`grad.${names[i]!}`);
        if (expected === undefined && g === null) return;
        if (expected === undefined || g === null) throw new Error(`gradient for ${names[i]}: oracle ${expected ? "has" : "lacks"} it, we ${g ? "have" : "lack"} it`);
        grads[names[i]!] = maxAbsDiff(g, expected);
      });
    }
    return { output, grads };
  });
}

export function worst(report: ParityReport): number {
  return Math.max(report.output, ...Object.values(report.grads));
}

export type Inputs = (name: string) => Tensor | null;
/** How to build the port of one diffusers class from its kwargs, and to call it on a case's inputs. */
export interface Runner<M extends Module = Module> {
  build(options: Record<string, unknown>): M;
  forward(module: M, input: Inputs, call: Record<string, unknown>): Tensor[];
}
export const runner = <M extends Module>(r: Runner<M>): Runner => r as unknown as Runner;

/** Runs one oracle case: build, load the oracle's weights, forward on fresh input leaves, compare. */
export function runCase(entry: OracleCase, run: Runner): ParityReport {
  return tidy(() => {
    const tensors = loadUnetTensors(`${entry.name}.safetensors`);
    const module = run.build(camelizeKeys(entry.kwargs));
    module.eval();
    module.loadStateDict(parameterState(tensors));
    const leaves = new Map<string, Tensor>();
    const input: Inputs = (name) => {
      const value = tensors.get(`input.${name}`);
      if (value === undefined) return null;
      if (!tensors.has(`grad.${name}`)) return value;
      const fresh = leaf(value);
      leaves.set(name, fresh);
      return fresh;
    };
    const outputs = run.forward(module, input, entry.call);
    const report = compareWithOracle(tensors, leaves, outputs, module, entry.grad_params);
    module.dispose();
    return report;
  });
}

