/**
 * Tensors owned by a module: `Parameter` (trainable, torch.nn.Parameter) and `Buffer` (state that is not
 * trained but is saved and moved with the module, torch.nn.Buffer).
 *
 * Why a subclass of Tensor rather than a wrapper: layers use their parameters directly as tensors
 * (`linear(x, this.weight, this.bias)`), and optimisers hold the very same objects.
 *
 * Why metadata is re-read here: `Module.to()` changes a parameter's dtype or device *in place* (through
 * ATen's `set_data`, which is what `param.data = new_data` does in PyTorch) so that optimisers and any
 * other holder keep a valid object (`copy_` cannot do this: it keeps the destination's dtype and device, and
 * a new Parameter object would leave optimisers updating the old one). The base Tensor caches shape, dtype and device on first use; a
 * module tensor keeps its own cache and clears it whenever its data is replaced.
 *
 * Module tensors are `keep`-ed: they live until the module (or the tensor) is disposed, never freed by the
 * `tidy` scope they were created in.
 */
import { op } from "../dispatch.js";
import { dtypeFromCode, type DType } from "../dtype.js";
import { empty, type TensorOptions } from "../creation.js";
import { keep } from "../lifetime.js";
import { native, type Handle } from "../native/addon.js";
import { Tensor, type Device } from "../tensor.js";

const detachOp = op("aten::detach");
const setDataOp = op("aten::set_data");

/** A new handle on `data`'s storage that is a fresh autograd leaf (torch.Tensor.detach). */
function detachedHandle(data: Tensor): Handle {
  return detachOp.call(data.handle) as Handle;
}

/** The shared behaviour of Parameter and Buffer: kept, and data replaceable in place. */
export class ModuleTensor extends Tensor {
  #meta: [number, string, number[], boolean] | undefined;

  /** Shares `data`'s storage (as torch.nn.Parameter does); `data` itself stays the caller's to dispose. */
  constructor(data: Tensor) {
    super(detachedHandle(data));
    keep(this);
  }

  private get info(): [number, string, number[], boolean] {
    return (this.#meta ??= native.info(this.handle));
  }
  override get shape(): readonly number[] {
    return this.info[2];
  }
  override get dtype(): DType {
    return dtypeFromCode(this.info[0]);
  }
  override get device(): Device {
    return this.info[1];
  }
  override get ndim(): number {
    return this.info[2].length;
  }
  override get numel(): number {
    return this.info[2].reduce((a, b) => a * b, 1);
  }

  /**
   * Makes this tensor hold `value`'s data (sharing its storage; dtype, device and shape may all change)
   * while staying the same object and the same autograd leaf: PyTorch's `tensor.data = value`.
   * The gradient, if any, is converted to the new dtype and device so that it keeps matching.
   */
  setData(value: Tensor): void {
    const grad = this.grad;
    if (grad) {
      const converted = grad.to({ dtype: value.dtype, device: value.device });
      setDataOp.run(grad.handle, converted.handle);
      converted.dispose();
      grad.dispose();
    }
    setDataOp.run(this.handle, value.handle);
    this.#meta = undefined;
  }
}

/** A trainable tensor of a module: requires grad by default and is listed by `Module.parameters()`. */
export class Parameter extends ModuleTensor {
  constructor(data: Tensor, requiresGrad = true) {
    super(data);
    this.requiresGrad = requiresGrad;
  }

  /** An uninitialised parameter of the given shape (layers fill it with their init functions). */
  static empty(shape: readonly number[], options: Omit<TensorOptions, "requiresGrad"> = {}): Parameter {
    using data = empty(shape, options);
    return new Parameter(data);
  }
}

/** A non-trainable tensor of a module (running statistics, fixed tables): saved and moved, not trained. */
export class Buffer extends ModuleTensor {
  /** Whether the buffer is part of `stateDict()` (PyTorch's `persistent`). */
  readonly persistent: boolean;

  constructor(data: Tensor, options: { persistent?: boolean } = {}) {
    super(data);
    this.persistent = options.persistent ?? true;
  }
}
