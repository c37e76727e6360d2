/**
 * Moving bytes between files and tensor memory through one process-wide 16 MiB bounce buffer.
 *
 * Why not read straight into each tensor through `memoryView(tensor)`? The ArrayBuffer that memoryView
 * returns holds a reference on the tensor's storage until the JS garbage collector happens to collect it,
 * and V8 does not see those native bytes, so it feels no pressure to: disposing loaded tensors then frees
 * nothing, and twenty loads of a 200 MB file were measured to hold 4 GB. Going through a single buffer
 * that lives for the whole process keeps just one such view, so `dispose` frees at once, while the data
 * still exists only once in memory: the tensor (plus these 16 MiB). The extra memcpy costs far less than
 * the disk read it follows.
 */
import { empty, memoryView } from "../creation.js";
import { op } from "../dispatch.js";
import { dtypeCode } from "../dtype.js";
import { keep } from "../lifetime.js";
import { call, type Tensor } from "../tensor.js";

/** Size of the bounce buffer: large enough that syscalls are few, small next to any real checkpoint. */
export const BOUNCE_BYTES = 16 * 1024 * 1024;

let bounce: { tensor: Tensor; bytes: Uint8Array } | undefined;

/** The bounce buffer, made on first use and kept for the life of the process. */
export function buffer(): { tensor: Tensor; bytes: Uint8Array } {
  if (bounce === undefined || bounce.tensor.disposed) {
    const tensor = keep(empty([BOUNCE_BYTES], { dtype: "uint8", device: "cpu" }));
    bounce = { tensor, bytes: new Uint8Array(memoryView(tensor)) };
  }
  return bounce;
}

const viewAsDType = op("aten::view.dtype");

/** A flat uint8 view of a contiguous tensor's elements (same storage). */
function byteView(contiguous: Tensor): Tensor {
  using flat = contiguous.reshape(-1);
  return call(viewAsDType, flat, dtypeCode("uint8"));
}

/**
 * Fills a freshly made contiguous CPU tensor with bytes: `read(into, offset)` must fill `into` with the
 * tensor's bytes starting at byte `offset`. Called once per chunk of at most BOUNCE_BYTES.
 */
export function fillTensor(tensor: Tensor, nbytes: number, read: (into: Uint8Array, offset: number) => void): void {
  if (nbytes === 0) return;
  const { tensor: staging, bytes } = buffer();
  using target = byteView(tensor);
  for (let offset = 0; offset < nbytes; offset += BOUNCE_BYTES) {
    const length = Math.min(BOUNCE_BYTES, nbytes - offset);
    read(bytes.subarray(0, length), offset);
    using source = staging.narrow(0, 0, length);
    using destination = target.narrow(0, offset, length);
    destination.copy_(source);
  }
}

/**
 * Passes a tensor's raw little-endian bytes (C order) to `write(bytes, offset)`, chunk by chunk, from any
 * device and any layout. `bytes` is only valid during the call. A non-contiguous tensor is made contiguous
 * once, as a temporary that is freed before returning.
 */
export function drainTensor(tensor: Tensor, nbytes: number, write: (bytes: Uint8Array, offset: number) => void): void {
  if (nbytes === 0) return;
  const { tensor: staging, bytes } = buffer();
  using detached = tensor.detach();
  using contiguous = detached.contiguous();
  using source = byteView(contiguous);
  for (let offset = 0; offset < nbytes; offset += BOUNCE_BYTES) {
    const length = Math.min(BOUNCE_BYTES, nbytes - offset);
    using chunk = source.narrow(0, offset, length);
    using destination = staging.narrow(0, 0, length);
    destination.copy_(chunk);
    write(bytes.subarray(0, length), offset);
  }
}
