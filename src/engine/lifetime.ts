/**
 * Deterministic lifetimes for native tensors.
 *
 * libtorch memory must not wait for the JS garbage collector (which does not see native bytes and may run
 * far too late). Three ways to free, in order of preference:
 *  - `tidy(fn)`: every tensor created while fn runs is freed when it returns, except the ones it returns
 *    (which move to the enclosing scope) and the ones passed to `keep`;
 *  - `using t = ...` / `t.dispose()`: explicit;
 *  - a FinalizationRegistry frees what was forgotten, as a backstop only.
 */
import { native, type Handle } from "./native/addon.js";

/** What a scope needs to know about a tensor. Implemented by Tensor. */
export interface Disposable {
  readonly disposed: boolean;
  kept: boolean;
  dispose(): void;
}

const scopes: Disposable[][] = [];

const backstop = new FinalizationRegistry<Handle>((handle) => native.free(handle));

export function track(tensor: Disposable, handle: Handle): void {
  backstop.register(tensor, handle, tensor);
  const scope = scopes[scopes.length - 1];
  if (scope) scope.push(tensor);
}

export function untrack(tensor: Disposable): void {
  backstop.unregister(tensor);
}

function collectResults(value: unknown, into: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if ("dispose" in value && "kept" in value) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectResults(item, into, depth + 1);
  } else if (value instanceof Map) {
    for (const item of value.values()) collectResults(item, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectResults(item, into, depth + 1);
  }
}

/**
 * Runs fn in a scope and frees every tensor created in it that fn does not return or `keep`. Returned
 * tensors (also inside arrays, Maps and plain objects) survive and belong to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Disposable[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const tensor of scope) if (!tensor.kept) tensor.dispose();
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error("tidy(fn) does not take async functions: the scope would close before the promise settles");
  }
  const survivors = new Set<unknown>();
  collectResults(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const tensor of scope) {
    if (tensor.disposed) continue;
    if (survivors.has(tensor)) {
      if (parent && !tensor.kept) parent.push(tensor);
    } else if (!tensor.kept) {
      tensor.dispose();
    }
  }
  return result;
}

/** Exempts tensors from every enclosing scope: they live until disposed. Returns its argument. */
export function keep<T extends Disposable>(tensor: T): T {
  tensor.kept = true;
  return tensor;
}

export interface MemoryInfo {
  /** Live tensor handles of this thread. */
  tensors: number;
  /** Bytes of their distinct storages. */
  bytes: number;
}

/** Live native tensors of this thread and the bytes they hold. */
export function memory(): MemoryInfo {
  return native.memory();
}
