/**
 * The layers of src/, lowest first: the only place their order is written. A module may import its own layer,
 * the layers below it, node's built-ins and npm packages, never a layer above it (`notBelow` names the lower
 * layers a layer may not import either). docs/ARCHITECTURE.md describes the order; `npm test` checks it
 * (scripts/test.sh runs `npx depcruise src --config .dependency-cruiser.js`, and
 * test/architecture/layers.test.ts runs the same rules on src/ and on a wrong-way import, so that they
 * cannot silently pass everything). bench/ and test/ sit above every layer and may import anything in src/.
 *
 * Each layer's `path` matches its files alone (the world's excludes the recipe's folder inside it).
 * @type {{ name: string, path: string, notBelow?: string[], comment: string }[]}
 */
export const LAYERS = [
  { name: "util", path: "^src/util/", comment: "shared plumbing: atomic writes, JSON reading, progress reporting, flags" },
  { name: "engine", path: "^src/engine/", comment: "tensors, autograd, modules, optimisers, safetensors; no diffusion" },
  { name: "models", path: "^src/models/", comment: "Stable Diffusion's models, their loading, the schedulers" },
  { name: "training", path: "^src/training/", comment: "the one resumable training loop, its checkpoints and log, the diffusion loss" },
  { name: "pipeline", path: "^src/pipeline/", comment: "txt2img, images, writing diffusers folders" },
  { name: "faces", path: "^src/faces/", comment: "real photos in: face detection, landmarks, CelebA-HQ alignment and crop, the Face Rec metric" },
  { name: "adapters", path: "^src/adapters/", comment: "LiDB and LoRA adapters (peft-style tuners), their files and the LiDB → LoRA export" },
  { name: "dreambooth", path: "^src/dreambooth/", comment: "DreamBooth training of LiDB/LoRA adapters, one identity or many per batch" },
  { name: "hypernetwork", path: "^src/hypernetwork/", comment: "the HyperNetwork (§4.2): photo features → LiDB factors; its training, files and predictions" },
  { name: "personalize", path: "^src/personalize/", comment: "personalisation (§4.3): the prediction, then the rank-relaxed fast fine-tuning" },
  { name: "world", path: "^src/miniworld/(?!base-model/|hypernetwork/)", comment: "the mini-world: identities, renders, captions, styles, vocabulary, splits" },
  { name: "evaluation", path: "^src/evaluation/", comment: "the world's metric networks and the studies" },
  {
    name: "recipe", path: "^src/miniworld/base-model/", notBelow: ["adapters", "dreambooth", "hypernetwork", "personalize"],
    comment: "the bundled base model's build (its last stage trains the metric networks); made before, and without, any adapter",
  },
  {
    name: "hypernetwork-recipe", path: "^src/miniworld/hypernetwork/",
    comment: "the bundled hypernetwork's recipe: its weight set (DreamBooth on the hypernetwork split), training and report",
  },
  { name: "server", path: "^src/server/", comment: "hdb serve: the HTTP API (Fastify), its SQLite storage, the bounded device queue and worker threads" },
  { name: "cli", path: "^src/(cli/|index\\.ts$)", comment: "the hdb command line and the public API (src/index.ts)" },
];

const layer = (name) => LAYERS.find((l) => l.name === name);

/** One rule per layer: not to the layers above it (nor to those in its `notBelow`). */
const layerRules = LAYERS.map((l, index) => {
  const forbidden = [...LAYERS.slice(index + 1), ...(l.notBelow ?? []).map(layer)];
  return forbidden.length === 0 ? null : {
    name: `layer-${l.name}`,
    severity: "error",
    comment: `${l.name} (${l.comment}) may not import ${forbidden.map((f) => f.name).join(", ")}`,
    from: { path: l.path },
    to: { path: forbidden.map((f) => f.path) },
  };
}).filter((rule) => rule !== null);

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    ...layerRules,
    {
      name: "no-circular",
      severity: "error",
      comment: "no import cycles at all (none between layers follows from the order; none within one keeps modules loadable one by one)",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "src-not-to-test-or-bench",
      severity: "error",
      comment: "the library never imports its tests or benchmarks",
      from: { path: "^src/" },
      to: { path: "^(test|bench)/" },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "an import dependency-cruiser cannot resolve would escape the layer rules",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    // `import type` is an arrow too: a type from a higher layer ties the lower one to it all the same.
    tsPreCompilationDeps: true,
  },
};
