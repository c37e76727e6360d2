/**
 * The commands of hdb (src/cli/hdb.ts is the entry). One file per command, each with its flag spec
 * (src/util/flags.ts): `hdb --help` lists the commands, `hdb <command> --help` shows a command's flags, defaults
 * and examples. Importing this module loads the native addon (through the commands' engine imports).
 */
import { formatCommandList, nearestName, type CommandSpec } from "../util/flags.js";
import { BUILD_ENGINE_SPEC, runBuildEngine } from "./build-engine.js";
import { DEMO_SPEC, runDemo } from "./demo.js";
import { ENGINE_CHECK_SPEC, runEngineCheckCommand } from "./engine-check.js";
import { EVAL_SPEC, runEval } from "./eval.js";
import { EXPORT_SPEC, runExport } from "./export.js";
import { FACES_COMMANDS, runFaces } from "./faces.js";
import { GENERATE_SPEC, runGenerate } from "./generate.js";
import { PREDICT_SPEC, runPredict, runTrainHypernet, TRAIN_HYPERNET_SPEC } from "./hypernetwork.js";
import { INFO_SPEC, runInfo } from "./info.js";
import { INSPECT_SPEC, runInspect } from "./inspect.js";
import { MINIWORLD_COMMANDS, runMiniworld } from "./miniworld.js";
import { PERSONALIZE_SPEC, runPersonalize } from "./personalize.js";
import { runScore, SCORE_SPEC } from "./score.js";
import { runServe, SERVE_SPEC } from "./serve.js";
import { runTrain, TRAIN_LIDB_SPEC, TRAIN_LORA_SPEC } from "./train.js";

/** Every command, in the order `hdb --help` lists them. */
const COMMANDS: readonly CommandSpec[] = [
  INFO_SPEC, DEMO_SPEC, ENGINE_CHECK_SPEC, GENERATE_SPEC, TRAIN_LIDB_SPEC, TRAIN_LORA_SPEC, TRAIN_HYPERNET_SPEC, PREDICT_SPEC, PERSONALIZE_SPEC, INSPECT_SPEC,
  EXPORT_SPEC, EVAL_SPEC, SCORE_SPEC, SERVE_SPEC, ...FACES_COMMANDS, ...MINIWORLD_COMMANDS, BUILD_ENGINE_SPEC,
];

const usage = formatCommandList("hdb: HyperDreamBooth on libtorch", "usage: hdb <command> [flags]    (hdb --version: the version, libtorch and device)", COMMANDS, [
  "hdb demo --out out/demo",
  "hdb miniworld render --ids 60000 --nuisance-seeds 0-3 --out me/",
  "hdb train-lidb --pretrained-model models/miniworld/base --instance-data-dir me/ --output-dir out/ --lidb-a 32 --lidb-b 16",
  "hdb generate --model models/miniworld/base --lidb out/me.lidb.safetensors --prompt \"a sks face as a pencil sketch\" --out face.png",
]);

/** Runs one hdb command line (without `node hdb.js`); the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "info":
      runInfo(rest);
      return 0;
    case "demo":
      await runDemo(rest);
      return 0;
    case "engine-check":
      await runEngineCheckCommand(rest);
      return 0;
    case "generate":
      await runGenerate(rest);
      return 0;
    case "inspect":
      runInspect(rest);
      return 0;
    case "export":
      await runExport(rest);
      return 0;
    case "train-lidb":
    case "train-lora":
      await runTrain(command === "train-lidb" ? "lidb" : "lora", rest);
      return 0;
    case "train-hypernet":
      await runTrainHypernet(rest);
      return 0;
    case "predict":
      await runPredict(rest);
      return 0;
    case "personalize":
      await runPersonalize(rest);
      return 0;
    case "eval":
      await runEval(rest);
      return 0;
    case "score":
      await runScore(rest);
      return 0;
    case "serve":
      await runServe(rest);
      return 0;
    case "faces":
      await runFaces(rest);
      return 0;
    case "miniworld":
      await runMiniworld(rest);
      return 0;
    case "build-engine":
      runBuildEngine(rest);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      // `hdb help <command>` is `hdb <command> --help`.
      if (command === "help" && rest.length > 0) return main([...rest, "--help"]);
      process.stdout.write(usage);
      return command === undefined ? 1 : 0;
    default: {
      const names = [...new Set(COMMANDS.map((c) => c.name.split(" ")[0]!))];
      process.stderr.write(`hdb: unknown command '${command}' (the nearest is '${nearestName(command, names)}'; hdb --help lists them all)\n`);
      return 2;
    }
  }
}
