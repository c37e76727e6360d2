// The command line's help and flag errors, through the real `hdb` in a child process: `hdb --help` lists every
// command; `hdb <command> --help` and `-h` exit 0 and print each of the command's flags with its default and an
// example; an unknown flag is one line naming the nearest valid flag (exit 1, no stack trace); `hdb --version`
// prints package.json's name and version, the libtorch and the default device.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { BUILD_ENGINE_SPEC } from "../../src/cli/build-engine.js";
import { DEMO_SPEC } from "../../src/cli/demo.js";
import { ENGINE_CHECK_SPEC } from "../../src/cli/engine-check.js";
import { EXPORT_SPEC } from "../../src/cli/export.js";
import { EVAL_SPEC } from "../../src/cli/eval.js";
import { FACES_COMMANDS } from "../../src/cli/faces.js";
import { GENERATE_SPEC } from "../../src/cli/generate.js";
import { INFO_SPEC } from "../../src/cli/info.js";
import { INSPECT_SPEC } from "../../src/cli/inspect.js";
import { PREDICT_SPEC, TRAIN_HYPERNET_SPEC } from "../../src/cli/hypernetwork.js";
import { MINIWORLD_COMMANDS } from "../../src/cli/miniworld.js";
import { PERSONALIZE_SPEC } from "../../src/cli/personalize.js";
import { SCORE_SPEC } from "../../src/cli/score.js";
import { SERVE_SPEC } from "../../src/cli/serve.js";
import { TRAIN_LIDB_SPEC, TRAIN_LORA_SPEC } from "../../src/cli/train.js";
import { defaultConfig } from "../../src/dreambooth/config.js";
import type { CommandSpec } from "../../src/util/flags.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const packageJson = fileURLToPath(new URL("../../../package.json", import.meta.url));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const child = spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};

/** Every command the CLI has, as typed after `hdb` (a new command must be added here and to `hdb --help`). */
const EXPECTED = ["info", "demo", "engine-check", "generate", "train-lidb", "train-lora", "train-hypernet", "predict", "personalize", "inspect", "export", "eval", "score", "serve", "faces detect", "faces crop", "faces compare", "miniworld render",
  "miniworld build", "miniworld metrics", "miniworld quality", "miniworld dreambooth", "miniworld lidb-set", "miniworld encoder", "miniworld hypernetwork", "miniworld personalize", "miniworld vocab", "miniworld styles", "miniworld describe", "build-engine"];
const SPECS: readonly CommandSpec[] = [INFO_SPEC, DEMO_SPEC, ENGINE_CHECK_SPEC, GENERATE_SPEC, TRAIN_LIDB_SPEC, TRAIN_LORA_SPEC, TRAIN_HYPERNET_SPEC, PREDICT_SPEC, PERSONALIZE_SPEC,
  INSPECT_SPEC, EXPORT_SPEC, EVAL_SPEC, SCORE_SPEC, SERVE_SPEC, ...FACES_COMMANDS, ...MINIWORLD_COMMANDS, BUILD_ENGINE_SPEC];

/** The command names listed under "commands:" in a group help. */
function listed(help: string): string[] {
  const block = help.split("\ncommands:\n")[1]?.split("\n\n")[0] ?? "";
  return block.split("\n").map((line) => line.trim().split(/\s{2,}/)[0]!).filter(Boolean);
}

test("hdb --help, -h and help list every command; a bare hdb prints the same and exits 1", () => {
  assert.deepEqual(SPECS.map((s) => s.name), EXPECTED);
  for (const flag of ["--help", "-h", "help"]) {
    const result = run(flag);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(listed(result.stdout), EXPECTED, flag);
    assert.match(result.stdout, /^examples?:$/m);
  }
  const bare = run();
  assert.equal(bare.status, 1);
  assert.deepEqual(listed(bare.stdout), EXPECTED);
});

test("hdb faces --help lists its subcommands", () => {
  for (const flag of ["--help", "-h"]) {
    const result = run("faces", flag);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(listed(result.stdout), EXPECTED.filter((name) => name.startsWith("faces ")));
    assert.match(result.stdout, /^examples?:$/m);
  }
});

test("hdb miniworld --help lists its subcommands", () => {
  for (const flag of ["--help", "-h"]) {
    const result = run("miniworld", flag);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(listed(result.stdout), EXPECTED.filter((name) => name.startsWith("miniworld ")));
    assert.match(result.stdout, /^examples?:$/m);
  }
});

for (const spec of SPECS) {
  test(`hdb ${spec.name} --help and -h print every flag with its default, and an example`, () => {
    const outputs: string[] = [];
    for (const flag of ["--help", "-h"]) {
      const result = run(...spec.name.split(" "), flag);
      assert.equal(result.status, 0, `${spec.name} ${flag}: ${result.stderr}`);
      assert.equal(result.stderr, "");
      const help = result.stdout;
      assert.ok(help.startsWith(`hdb ${spec.name}: ${spec.summary}\n`), help);
      assert.match(help, new RegExp(`^usage: hdb ${spec.name}`, "m"));
      assert.match(help, /^examples?:\n {2}hdb /m);
      const lines = help.split("\n");
      for (const [name, flag] of Object.entries(spec.flags)) {
        const at = lines.findIndex((l) => new RegExp(`^ {2}(-\\w, | {4})--${name}(\\s|$)`).test(l));
        assert.ok(at >= 0, `${spec.name}: --${name} missing from the help`);
        // A flag too long for the column has its description on the next line.
        const continued = /^ {8,}[^ -]/.test(lines[at + 1] ?? "");
        const line = `${lines[at]!}${continued ? ` ${lines[at + 1]!.trim()}` : ""}`;
        assert.ok(line.includes(flag.description), `${spec.name} --${name}: description`);
        const shown = flag.defaultText ?? (flag.default === undefined || flag.type === "boolean" ? undefined : String(flag.default));
        if (shown !== undefined) assert.ok(line.includes(`default: ${shown}`), `${spec.name} --${name}: default ${shown} in '${line}'`);
      }
      assert.ok(lines.some((l) => /^ {2}-h, --help\s/.test(l)));
      outputs.push(help);
    }
    assert.equal(outputs[0], outputs[1], "-h prints what --help prints");
  });
}

test("the help of train-lidb and train-lora shows each adapter's own defaults and the separate basis seed", () => {
  const lidb = run("train-lidb", "--help").stdout;
  const lora = run("train-lora", "--help").stdout;
  const line = (help: string, flag: string): string => help.split("\n").find((l) => l.includes(`--${flag} `)) ?? "";
  for (const [help, adapter] of [[lidb, "lidb"], [lora, "lora"]] as const) {
    const d = defaultConfig(adapter);
    assert.match(line(help, "max-train-steps"), new RegExp(`default: ${d.maxTrainSteps}\\)`));
    assert.match(line(help, "learning-rate"), new RegExp(`default: ${String(d.learningRate).replace(".", "\\.")}\\)`));
    assert.match(line(help, "rank"), new RegExp(`default: ${d.rank}\\)`));
  }
  assert.match(line(lidb, "max-train-steps"), /default: 400\)/);
  assert.match(line(lora, "max-train-steps"), /default: 500\)/);
  assert.match(line(lidb, "basis-seed"), /aux bases.*default: 0\)/);
  assert.match(line(lidb, "seed"), /training randomness/);
  assert.doesNotMatch(lora, /--basis-seed|--lidb-a/, "LiDB-only flags are not train-lora's");
});

test("help wins over other flags, even bad ones", () => {
  const result = run("train-lidb", "--learning-rate", "fast", "--frobnicate", "-h");
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^hdb train-lidb: /);
  const via = run("help", "generate");
  assert.equal(via.status, 0, via.stderr);
  assert.equal(via.stdout, run("generate", "--help").stdout);
});

test("an unknown flag is one line naming the nearest valid flag, exit 1", () => {
  const result = run("train-lidb", "--learnig-rate", "1e-3");
  assert.equal(result.status, 1);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, "hdb train-lidb: unknown flag --learnig-rate (did you mean --learning-rate?)\n");
  for (const spec of SPECS) {
    const names = Object.keys(spec.flags);
    const args = spec.name.split(" ");
    if (names.length === 0) {
      const none = run(...args, "--verbose");
      assert.equal(none.status, 1, spec.name);
      assert.equal(none.stderr, `hdb ${spec.name}: unknown flag --verbose (this command takes no flags; see hdb ${spec.name} --help)\n`);
      continue;
    }
    // The longest flag with a letter dropped from its middle (a typo nothing else is near).
    const flag = names.reduce((a, b) => (b.length > a.length ? b : a));
    const typo = flag.slice(0, flag.length >> 1) + flag.slice((flag.length >> 1) + 1);
    const bad = run(...args, `--${typo}`);
    assert.equal(bad.status, 1, `${spec.name} --${typo}`);
    assert.equal(bad.stderr, `hdb ${spec.name}: unknown flag --${typo} (did you mean --${flag}?)\n`);
  }
  const far = run("demo", "--zzzzzzzzzzzz");
  assert.equal(far.status, 1);
  assert.match(far.stderr, /^hdb demo: unknown flag --zzzzzzzzzzzz \(the nearest is --[\w-]+; hdb demo --help lists them all\)\n$/);
});

test("a flag without its value, a value for a switch and a stray argument are one-line errors", () => {
  for (const [args, message] of [
    [["demo", "--out"], "hdb demo: --out needs a value\n"],
    [["demo", "--steps", "--out", "x"], "hdb demo: --steps needs a value, got the flag-like '--out' (write --steps=--out if that is the value)\n"],
    [["generate", "--karras=yes"], "hdb generate: --karras takes no value, got '--karras=yes'\n"],
    [["engine-check", "300"], "hdb engine-check: unexpected argument '300' (this command takes flags only; see hdb engine-check --help)\n"],
  ] as const) {
    const result = run(...args);
    assert.equal(result.status, 1, args.join(" "));
    assert.equal(result.stderr, message);
  }
});

test("hdb --version prints package.json's name and version, the libtorch and the default device", () => {
  const { name, version } = JSON.parse(readFileSync(packageJson, "utf8")) as { name: string; version: string };
  assert.match(version, /^\d+\.\d+\.\d+/);
  const result = run("--version");
  assert.equal(result.status, 0, result.stderr);
  const record = JSON.parse(readFileSync(new URL("../../../build/engine.json", import.meta.url), "utf8")) as { torchVersion: string; libtorchDir: string };
  const lines = result.stdout.split("\n");
  assert.equal(lines[0], `${name} ${version}`);
  assert.equal(lines[1], `libtorch ${record.torchVersion} (${record.libtorchDir})`);
  assert.match(lines[2] ?? "", /^device (cpu|cuda|mps)\S* \(available: cpu(, cuda ×\d+)?(, mps)?\)$/);
});

test("an unknown command names the nearest one", () => {
  const result = run("genrate");
  assert.equal(result.status, 2);
  assert.equal(result.stderr, "hdb: unknown command 'genrate' (the nearest is 'generate'; hdb --help lists them all)\n");
});
