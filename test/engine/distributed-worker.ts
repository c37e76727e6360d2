// One rank of test/engine/distributed.test.ts (spawned with torchrun's environment, by the test or by torchrun):
// joins the process group and runs a scenario, writing what it saw to <out>/rank<r>.json.
//   node distributed-worker.js collectives|die|stall <out>
import { writeFileSync } from "node:fs";
import path from "node:path";
import { arange, averageGradients, full, initProcessGroup, tensor, zeros } from "../../src/engine/index.js";

const [scenario, out] = process.argv.slice(2);
const rank = Number(process.env["RANK"]);
const write = (result: Record<string, unknown>): void => writeFileSync(path.join(out!, `rank${rank}.json`), JSON.stringify(result));

try {
  const group = initProcessGroup();
  if (scenario === "collectives") {
    const r = group.rank + 1;
    const a = tensor([[1, 2, 3], [4, 5, 6]]).mul(r);
    const b = tensor([10 * group.rank], { dtype: "float64" });
    const c = arange(6).reshape(2, 3).float().mul(r).transpose(0, 1);  // not contiguous
    // 2 × 20 MB of float32: more than one 25 MiB bucket.
    const big = [full([5_000_000], r), full([5_000_000], 2 * r)];
    group.allReduce([a, b, c, ...big]);
    const mean = tensor([r, 3]);
    group.allReduce([mean], "mean");
    const p = tensor([group.rank, group.rank]).requiresGrad_();
    group.broadcast([p], 1);
    group.barrier();
    // Gradients: w has one on every rank, u on rank 1 alone, n on none.
    const [w, u, n] = [zeros([2]).requiresGrad_(), zeros([1]).requiresGrad_(), zeros([1]).requiresGrad_()];
    w.grad = tensor([r, 2 * r]);
    if (group.rank === 1) u.grad = tensor([4]);
    averageGradients([w, u, n], group);
    write({
      rank: group.rank, worldSize: group.worldSize, localRank: group.localRank, a: a.toArray(), b: b.toArray(), c: c.toArray(),
      big: big.map((t) => [t.min().item(), t.max().item()]), mean: mean.toArray(), p: p.toArray(), pRequiresGrad: p.requiresGrad,
      w: w.grad!.toArray(), u: u.grad!.toArray(), n: n.grad === null,
    });
  } else if (scenario === "stall") {
    // Rank 1 stops answering for longer than the timeout (without dying): rank 0's collective must not wait for ever.
    group.barrier();
    if (group.rank === 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
    else {
      const started = Date.now();
      try {
        group.allReduce([tensor([1])]);
        write({ rank, survived: true });
      } catch (error) {
        write({ rank, code: (error as { code?: string }).code, message: (error as Error).message, seconds: (Date.now() - started) / 1000 });
      }
    }
  } else if (scenario === "die") {
    group.barrier();
    if (group.rank === 1) process.kill(process.pid, "SIGKILL");
    const started = Date.now();
    try {
      group.allReduce([tensor([1])]);
      write({ rank, survived: true });
    } catch (error) {
      write({ rank, code: (error as { code?: string }).code, message: (error as Error).message, seconds: (Date.now() - started) / 1000 });
    }
  }
  group.destroy();
} catch (error) {
  write({ rank, code: (error as { code?: string }).code, message: (error as Error).message });
  process.exitCode = 1;
}
