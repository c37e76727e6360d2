/**
 * `hdb miniworld lidb-set`: the hypernetwork's training set in the mini-world (src/miniworld/hypernetwork/
 * weight-set.ts). Flags: MINIWORLD_LIDB_SET_SPEC below. Shows progress with an ETA; killed, the same command
 * resumes; a larger --count with the same settings extends the set.
 */
import path from "node:path";
import { getNumThreads, setNumThreads } from "../engine/index.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { buildWeightSet, WEIGHT_SET_TRAINING as T } from "../miniworld/hypernetwork/weight-set.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";

export const MINIWORLD_LIDB_SET_SPEC = defineCommand({
  name: "miniworld lidb-set",
  summary: "pre-optimised LiDB weights for the hypernetwork split: one photo and one DreamBooth-trained LiDB file per identity",
  usage: "--out <folder> [flags]",
  details: `Identities 50000, 50001, … (the hypernetwork split), one photo each (nuisance seed ${T.photoNuisanceSeed}), LiDB trained as in
hdb miniworld dreambooth: ${T.steps} steps, lr ${T.learningRate}, a = ${T.lidbA}, b = ${T.lidbB}, rank ${T.rank}. Writes photos/, lidb/ (manifest.json
and one .lidb.safetensors per identity) and weight-set.json (settings, command, commit, model hash). Killed, the
same command resumes; a larger --count extends the set.`,
  flags: {
    out: { type: "string", value: "<folder>", description: "where photos/, lidb/ and weight-set.json go (required)" },
    count: { type: "integer", min: 1, max: 10_000, default: 1000, description: "identities of the hypernetwork split" },
    model: { type: "string", value: "<folder>", description: "the base model", defaultText: "models/miniworld/base" },
    "identities-per-batch": { type: "integer", min: 1, default: 16, description: "identities trained together on one forward/backward" },
    "checkpoint-every": { type: "integer", min: 1, default: 50, description: "steps between each in-flight identity's checkpoints" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld lidb-set --out data/miniworld-lidb-set --count 1000", "hdb miniworld lidb-set --out /tmp/set --count 4 --threads 1"],
});

export async function runMiniworldLidbSet(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_LIDB_SET_SPEC, argv);
  if (!values.out) throw new Error("--out is required (the folder for photos/, lidb/ and weight-set.json)");
  if (values.threads !== undefined) setNumThreads(values.threads);
  const started = Date.now();
  const { record, stopped } = await buildWeightSet({
    modelDir: path.resolve(values.model ?? path.join(bundledMiniworldDir(), "base")), outDir: path.resolve(values.out), count: values.count,
    identitiesPerBatch: values["identities-per-batch"], checkpointEvery: values["checkpoint-every"], threads: getNumThreads(),
    command: ["hdb", "miniworld", "lidb-set", ...argv], progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${stopped ? "stopped" : "done"} in ${formatDuration((Date.now() - started) / 1000)}: ${record.finished}/${values.count} identities → ${path.join(values.out, "lidb")}\n`);
}
