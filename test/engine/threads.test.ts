// The default thread count on a shared machine (src/engine/native/threads.ts): the cores other processes leave
// free, read from two /proc/stat samples; nothing is changed when the user chose.
import assert from "node:assert/strict";
import { test } from "node:test";
import { autoThreads, cpuJiffies, freeCoreThreads } from "../../src/engine/native/threads.js";

/** A /proc/stat whose aggregate line has these user and idle jiffies (other columns zero). */
const stat = (user: number, idle: number): string => `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\nintr 1 2 3\n`;

test("busy and total jiffies come from the aggregate cpu line (idle and iowait are not busy)", () => {
  assert.deepEqual(cpuJiffies("cpu  10 1 2 100 5 0 1 0 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n"), { busy: 14, total: 119 });
  assert.throws(() => cpuJiffies("intr 1 2\n"), /no aggregate 'cpu' line/);
});

test("free cores: an idle 2-core machine keeps 2 threads, one busy process leaves 1, a saturated one still 1", () => {
  assert.equal(freeCoreThreads(stat(0, 0), stat(2, 198), 2), 2);       // 1 % busy
  assert.equal(freeCoreThreads(stat(0, 0), stat(100, 100), 2), 1);     // one core's worth busy
  assert.equal(freeCoreThreads(stat(0, 0), stat(200, 0), 2), 1);       // both busy: never fewer than 1
  assert.equal(freeCoreThreads(stat(0, 0), stat(300, 1300), 16), 13);  // 16 cores, 3 busy
  assert.equal(freeCoreThreads(stat(5, 5), stat(5, 5), 4), 4, "no time passed: keep every core");
});

test("nothing is chosen when the user chose (OMP_NUM_THREADS, HDB_AUTO_THREADS=0), in workers, or with one core", () => {
  for (const env of [{ OMP_NUM_THREADS: "2" }, { HDB_AUTO_THREADS: "0" }]) {
    assert.equal(autoThreads(2, { env, mainThread: true, sampleMs: 1 }), undefined, JSON.stringify(env));
  }
  assert.equal(autoThreads(2, { env: {}, mainThread: false, sampleMs: 1 }), undefined);
  assert.equal(autoThreads(1, { env: {}, mainThread: true, sampleMs: 1 }), undefined);
  const chosen = autoThreads(2, { env: {}, mainThread: true, sampleMs: 20 });
  assert.ok(chosen === undefined || chosen === 1, `on 2 cores the only smaller choice is 1, got ${chosen}`);
});
