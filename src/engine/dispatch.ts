/**
 * ATen operators by schema name, through the addon's one generic call path (see native/engine.cc).
 *
 * `op("aten::conv2d")` returns a lazily resolved operator; arguments are positional, in schema order, and
 * trailing ones may be omitted (the schema's defaults apply). This layer knows only handles; Tensor-level
 * wrappers live in tensor.ts.
 */
import { native, type NativeValue } from "./native/addon.js";

export class Operator {
  private id = -2;

  constructor(readonly qualifiedName: string) {}

  private resolve(): number {
    if (this.id === -2) {
      const dot = this.qualifiedName.indexOf(".", this.qualifiedName.indexOf("::"));
      const name = dot < 0 ? this.qualifiedName : this.qualifiedName.slice(0, dot);
      const overload = dot < 0 ? "" : this.qualifiedName.slice(dot + 1);
      this.id = native.opFind(name, overload);
    }
    return this.id;
  }

  /** Whether this libtorch build registers the operator. */
  exists(): boolean {
    return this.resolve() >= 0;
  }

  get schema(): string {
    return native.opSchema(this.require());
  }

  private require(): number {
    const id = this.resolve();
    if (id < 0) throw new Error(`operator ${this.qualifiedName} is not registered in this libtorch build`);
    return id;
  }

  /** The operator's id in the addon (resolving it on first use). */
  get nativeId(): number {
    return this.id >= 0 ? this.id : this.require();
  }

  call(...args: NativeValue[]): NativeValue {
    return native.call(this.id >= 0 ? this.id : this.require(), true, ...args);
  }

  /** Calls for the side effect only (in-place operators): no result handle is made. */
  run(...args: NativeValue[]): void {
    native.call(this.id >= 0 ? this.id : this.require(), false, ...args);
  }
}

const operators = new Map<string, Operator>();

export function op(qualifiedName: string): Operator {
  let found = operators.get(qualifiedName);
  if (!found) {
    found = new Operator(qualifiedName);
    operators.set(qualifiedName, found);
  }
  return found;
}
