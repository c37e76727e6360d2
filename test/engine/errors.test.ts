// libtorch errors become JS exceptions with libtorch's message and the TypeScript call site; never a crash.
import assert from "node:assert/strict";
import { test } from "node:test";
import { empty, ones, op, randn, tensor, Tensor } from "../../src/engine/index.js";

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}

test("a shape mismatch names the operator, libtorch's message, and this file in the stack", () => {
  const error = thrown(() => randn([2, 3]).matmul(randn([4, 5])));
  assert.match(error.message, /aten::matmul: mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)/);
  assert.doesNotMatch(error.message, /Exception raised from|frame #/, "no C++ backtrace in the message");
  assert.match(error.stack ?? "", /errors\.test\.js/);
});

test("a dtype error is reported, not crashed on", () => {
  const error = thrown(() => ones([2], { dtype: "int64" }).add(ones([2], { dtype: "bool" })).matmul(randn([2])));
  assert.match(error.message, /aten::/);
});

test("asking for more memory than exists throws an out-of-memory error and the process goes on", () => {
  const error = thrown(() => empty([1 << 20, 1 << 20, 1 << 10]));
  assert.match(error.message, /memory|allocat/i);
  assert.equal(ones([2]).sum().item(), 2);
});

test("bad arguments are type errors that name the argument", () => {
  assert.match(thrown(() => op("aten::add.Tensor").call("not a tensor", 1)).message, /tensor handle/);
  assert.match(thrown(() => randn([2]).reshape(1.5)).message, /integer/);
  assert.match(thrown(() => op("aten::no_such_op").call()).message, /not registered/);
  assert.match(thrown(() => randn([-1])).message, /invalid shape/);
  assert.match(thrown(() => tensor([[1, 2], [3]])).message, /ragged/);
});

test("using a disposed tensor is an error, not a crash", () => {
  const t = ones([2]);
  const handle = t.handle;
  t.dispose();
  assert.match(thrown(() => t.add(1)).message, /disposed/);
  assert.match(thrown(() => new Tensor(handle).sum()).message, /invalid or was already disposed/);
});
