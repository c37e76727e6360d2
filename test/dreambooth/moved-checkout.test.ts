// A run recorded in another checkout names the model by that checkout's absolute path; resuming it here must see the
// same model (models/miniworld/base under both roots), and nothing else.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { sameModelElsewhere } from "../../src/dreambooth/trainer.js";

const repository = fileURLToPath(new URL("../../../", import.meta.url));
const here = path.join(repository, "models", "miniworld", "base");

test("a model recorded under another checkout's root is this checkout's model; other folders are not", () => {
  assert.equal(sameModelElsewhere("/tmp/clean/models/miniworld/base", here), true);
  assert.equal(sameModelElsewhere("/tmp/clean/models/miniworld/other", here), false);
  assert.equal(sameModelElsewhere("/tmp/clean/xmodels/miniworld/base", here), false);
  assert.equal(sameModelElsewhere("models/miniworld/base", here), false, "a relative record is compared as written");
  assert.equal(sameModelElsewhere(here, here), false, "the same string needs no translation");
  assert.equal(sameModelElsewhere("/tmp/clean/models/miniworld/base", path.join(repository, "models", "missing")), false);
});
