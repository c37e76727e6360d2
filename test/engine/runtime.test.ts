// Threads, devices, autocast and build information.
import assert from "node:assert/strict";
import { test } from "node:test";
import { autocast, buildInfo, defaultDevice, devices, getNumThreads, ones, randn, setNumThreads, tidy } from "../../src/engine/index.js";

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
