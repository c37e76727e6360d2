// The progress model (src/util/progress.ts): the bar's rate and ETA, and the reporter that turns the loops'
// reports into bars.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDuration, Progress, progressBars, type ProgressStream } from "../../src/util/progress.js";

/** A log stream (not a TTY) that keeps its lines, and a clock the test moves. */
function fixture(): { stream: ProgressStream; lines: string[]; clock: () => number; advance: (ms: number) => void } {
  const lines: string[] = [];
  let now = 1_000_000;
  return {
    stream: { isTTY: false, write: (text: string) => lines.push(text.replace(/\n$/, "")) },
    lines,
    clock: () => now,
    advance: (ms) => { now += ms; },
  };
}

test("formatDuration: seconds, minutes, hours; ? when unknown", () => {
  assert.equal(formatDuration(12.4), "12s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(7620), "2h07m");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(formatDuration(NaN), "?");
});

test("the first tick right after the bar is made shows no rate (no division by a near-zero time)", () => {
  const f = fixture();
  const bar = new Progress({ label: "denoising", total: 50, stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  f.advance(0.001);
  bar.tick(1, "t=981");
  assert.equal(f.lines.at(-1), "denoising [------------------------] 1/50 ?/s ETA ?  t=981");
  f.advance(200);
  bar.tick(1);
  // Two steps in 0.2 s: the rate means something now.
  assert.equal(f.lines.at(-1), "denoising [#-----------------------] 2/50 10.00/s ETA 5s");
});

test("one slow step shows its rate once a second has passed", () => {
  const f = fixture();
  const bar = new Progress({ label: "demo", total: 4, stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  f.advance(2000);
  bar.tick(1, "a face");
  assert.equal(f.lines.at(-1), "demo [######------------------] 1/4 0.50/s ETA 6s  a face");
});

test("a resumed bar counts only this run's steps in the rate", () => {
  const f = fixture();
  const bar = new Progress({ label: "vae", total: 100, start: 60, stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  f.advance(4000);
  bar.tick(20);
  assert.equal(f.lines.at(-1), "vae [###################-----] 80/100 5.00/s ETA 4s");
});

test("off a terminal a line is printed every logEverySeconds and at the end", () => {
  const f = fixture();
  const bar = new Progress({ label: "x", total: 3, stream: f.stream, clock: f.clock, logEverySeconds: 5 });
  bar.tick();
  f.advance(1000);
  bar.tick();
  assert.equal(f.lines.length, 1);
  f.advance(1000);
  bar.tick();
  assert.equal(f.lines.length, 2);
  assert.match(f.lines[1]!, /^x \[#{24}\] 3\/3 1\.50\/s ETA 0s$/);
});

test("on a terminal the line is redrawn in place and ended at the last step", () => {
  const written: string[] = [];
  const bar = new Progress({ label: "t", total: 2, stream: { isTTY: true, write: (text: string) => written.push(text) } });
  bar.tick();
  bar.tick();
  assert.ok(written[0]!.startsWith("\rt [############------------] 1/2 ") && written[0]!.endsWith("\x1b[K"));
  assert.equal(written.at(-1), "\n");
});

test("progressBars: a loop's first report starts the bar silently, its steps draw it with the loss", () => {
  const f = fixture();
  const report = progressBars({ stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  report({ label: "identity-network", done: 10, total: 20, start: 10 });
  assert.deepEqual(f.lines, []);
  f.advance(1000);
  report({ label: "identity-network", done: 11, total: 20, start: 10, loss: 0.123456 });
  assert.equal(f.lines.at(-1), "identity-network [#############-----------] 11/20 1.00/s ETA 9s  loss 0.1235");
  f.advance(1000);
  report({ label: "identity-network", done: 12, total: 20, start: 10, note: "2 identities" });
  assert.equal(f.lines.at(-1), "identity-network [##############----------] 12/20 1.00/s ETA 8s  2 identities");
  // Another loop: a new bar, whose clock starts at its own first report.
  f.advance(5000);
  report({ label: "fidelity-network", done: 0, total: 10 });
  f.advance(500);
  report({ label: "fidelity-network", done: 1, total: 10, loss: 1 });
  assert.equal(f.lines.at(-1), "fidelity-network [##----------------------] 1/10 ?/s ETA ?  loss 1.0000");
  f.advance(500);
  report({ label: "fidelity-network", done: 2, total: 10, loss: 1 });
  assert.equal(f.lines.at(-1), "fidelity-network [#####-------------------] 2/10 2.00/s ETA 4s  loss 1.0000");
});

test("progressBars: steps resumed mid-run (an identity restarting from its checkpoint) are left out of the rate", () => {
  const f = fixture();
  const report = progressBars({ stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  report({ label: "train-lidb", done: 0, total: 200, start: 0 });
  report({ label: "train-lidb", done: 0, total: 200, start: 0 });
  assert.equal(f.lines.at(-1), "train-lidb [------------------------] 0/200 ?/s ETA ?");
  f.advance(2000);
  report({ label: "train-lidb", done: 2, total: 200, start: 0, loss: 0.5 });
  assert.equal(f.lines.at(-1), "train-lidb [------------------------] 2/200 1.00/s ETA 3m18s  loss 0.5000");
  report({ label: "train-lidb", done: 82, total: 200, start: 80 });
  assert.equal(f.lines.at(-1), "train-lidb [##########--------------] 82/200 1.00/s ETA 1m58s");
});

test("progressBars: a report with start = done restarts the rate on the same bar (the evaluation's images after a pause)", () => {
  const f = fixture();
  const report = progressBars({ stream: f.stream, clock: f.clock, logEverySeconds: 0 });
  report({ label: "images", done: 0, total: 100, start: 0 });
  f.advance(10_000);
  report({ label: "images", done: 10, total: 100, start: 0 });
  assert.equal(f.lines.at(-1), "images [##----------------------] 10/100 1.00/s ETA 1m30s");
  // Ten minutes of other work (a method's training), then the images go on: the pause is not image time.
  f.advance(600_000);
  report({ label: "images", done: 10, total: 100, start: 10 });
  f.advance(2000);
  report({ label: "images", done: 14, total: 100, start: 0 });
  assert.equal(f.lines.at(-1), "images [###---------------------] 14/100 2.00/s ETA 43s");
});
