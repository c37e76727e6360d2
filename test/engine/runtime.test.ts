// Threads, devices, autocast and build information.
import assert from "node:assert/strict";
import { test } from "node:test";
import { autocast, buildInfo, defaultDevice, deviceMemory, devices, emptyCache, getNumThreads, ones, randn, setNumThreads, synchronize, tidy, zeros } from "../../src/engine/index.js";

test("setNumThreads changes libtorch's intra-op threads and rejects nonsense", () => {
  const before = getNumThreads();
  setNumThreads(1);
  assert.equal(getNumThreads(), 1);
  setNumThreads(before);
  assert.equal(getNumThreads(), before);
  assert.throws(() => setNumThreads(0), /at least 1/);
});

test("devices are reported; a missing device is a clear error", () => {
  const info = devices();
  assert.equal(typeof info.cuda, "number");
  if (info.cuda === 0) {
    assert.equal(defaultDevice() === "cpu" || defaultDevice() === "mps", true);
    assert.throws(() => ones([2]).to("cuda:0"), /CUDA|cuda/);
  }
  assert.throws(() => ones([2]).to("tpu:0"), /device|tpu/i);
});

test("deviceMemory follows the CUDA caching allocator (allocated, peak, reset, emptyCache); the CPU has none", () => {
  assert.throws(() => deviceMemory("cpu"), /CPU has no caching allocator/);
  emptyCache("cpu");
  if (devices().cuda === 0) {
    assert.throws(() => deviceMemory("cuda:0"), /no CUDA device/);
    return;
  }
  const mib = 2 ** 20;
  const before = deviceMemory("cuda:0", { resetPeak: true });
  const big = zeros([64 * mib / 4], { device: "cuda:0" });  // 64 MiB of float32
  synchronize("cuda:0");
  const during = deviceMemory("cuda:0");
  assert.ok(during.allocated - before.allocated >= 64 * mib, `allocated grew by ${during.allocated - before.allocated} bytes for a 64 MiB tensor`);
  assert.ok(during.peakAllocated >= during.allocated && during.reserved >= during.allocated);
  big.dispose();
  const after = deviceMemory("cuda:0", { resetPeak: true });
  assert.equal(after.allocated, before.allocated, "freeing the tensor returns its bytes to the cache");
  assert.ok(after.peakAllocated >= during.allocated, "the peak remembers the tensor until reset");
  assert.equal(deviceMemory("cuda:0").peakAllocated, after.allocated, "reset brings the peak down to what is live");
  emptyCache("cuda:0");
  assert.ok(deviceMemory("cuda:0").reserved <= after.reserved - 64 * mib, "emptyCache gives the freed block back");
});

test("autocast on CPU runs matmul in bfloat16, keeps float32 outside, and restores after nesting and throws", () => tidy(() => {
  const a = randn([4, 4]);
  const b = randn([4, 4]);
  assert.equal(autocast("cpu", "bfloat16", () => a.matmul(b)).dtype, "bfloat16");
  assert.equal(a.matmul(b).dtype, "float32");
  autocast("cpu", "bfloat16", () => {
    assert.equal(autocast("cpu", "bfloat16", () => a.matmul(b), false).dtype, "float32");
    assert.equal(a.matmul(b).dtype, "bfloat16");
  });
  assert.throws(() => autocast("cpu", "bfloat16", () => {
    throw new Error("inside");
  }));
  assert.equal(a.matmul(b).dtype, "float32");
  assert.throws(() => autocast("cpu", "float32", () => 0), /float16 or bfloat16/);
}));

test("build info names the libtorch the addon was built against and loaded", () => {
  const info = buildInfo();
  assert.match(info.torchVersion, /^\d+\.\d+/);
  assert.ok(info.loadedLibrary.startsWith(info.libtorchDir), `${info.loadedLibrary} not in ${info.libtorchDir}`);
});
