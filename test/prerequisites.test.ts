// Missing prerequisites skip a test on a developer's machine and fail it in CI (test/prerequisites.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const module = fileURLToPath(new URL("./prerequisites.js", import.meta.url));
const reasonWith = (ci: string | undefined): string => {
  const env = { ...process.env };
  delete env["CI"];
  if (ci !== undefined) env["CI"] = ci;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e",
    `const { skipOutsideCI } = await import(${JSON.stringify(module)}); console.log(JSON.stringify([skipOutsideCI("no oracle"), skipOutsideCI(false)]));`],
  { encoding: "utf8", env });
  assert.equal(child.status, 0, child.stderr);
  return child.stdout.trim();
};

test("a missing prerequisite is a skip reason outside CI and runs (to fail) with CI=true", () => {
  assert.equal(reasonWith(undefined), JSON.stringify(["no oracle", false]));
  assert.equal(reasonWith("true"), JSON.stringify([false, false]));
});
