// Finding models: local pipeline and component folders, the Hugging Face cache layout (by path, by model id
// through HF_HUB_CACHE / HF_HOME, revisions through refs), the offline error, model_index.json parsing, and
// which files a download fetches. On the tiny pipelines of test/oracle/fixtures_tiny_sd.py; no network.
import assert from "node:assert/strict";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  downloadPipeline, findSnapshot, hubCacheDir, hubOffline, isRepoId, listLocalFiles, ModelLoadingError, parseModelIndex,
  readModelIndex, resolvePretrained, selectPipelineFiles, type HubClient,
} from "../../src/models/index.js";
import { skipOutsideCI } from "../prerequisites.js";

const FIXTURES = resolve(fileURLToPath(import.meta.url), "../../../../test/fixtures/generated/tiny_sd");
const skip = skipOutsideCI(existsSync(join(FIXTURES, "manifest.json")) ? false : "the generated fixtures are missing: run .venv/bin/python test/oracle/generate.py");
const CACHE = join(FIXTURES, "hf-cache");
const manifest = skip ? undefined : (JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as {
  hfCache: { repoId: string; main: string; partial: string; partialFiles: string[]; files: string[] };
});
/** An environment with no Hugging Face variables, so the machine's own cache never leaks into a test. */
const EMPTY_ENV = { HOME: "/nonexistent-home" };

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hdb-resolve-"));
  temporary.push(dir);
  return dir;
}
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

async function assertRejectsLoading(promise: Promise<unknown>, ...patterns: (string | RegExp)[]): Promise<string> {
  let message = "";
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ModelLoadingError, `expected a ModelLoadingError, got ${String(error)}`);
    message = error.message;
    for (const pattern of patterns) {
      if (typeof pattern === "string") assert.ok(error.message.includes(pattern), `message lacks "${pattern}":\n${error.message}`);
      else assert.match(error.message, pattern);
    }
    return true;
  });
  return message;
}

test("a local pipeline folder, and its components as folders", { skip }, async () => {
  const sd1 = await resolvePretrained(join(FIXTURES, "sd1"), { env: EMPTY_ENV });
  assert.equal(sd1.kind, "pipeline");
  assert.equal(sd1.source, "local");
  assert.equal(sd1.path, join(FIXTURES, "sd1"));
  assert.deepEqual(sd1.modelIndex!.components.map((c) => [c.name, c.className, c.kind]).sort(), [
    ["scheduler", "PNDMScheduler", "scheduler"], ["text_encoder", "CLIPTextModel", "model"], ["tokenizer", "CLIPTokenizer", "tokenizer"],
    ["unet", "UNet2DConditionModel", "model"], ["vae", "AutoencoderKL", "model"],
  ]);
  assert.deepEqual(sd1.modelIndex!.skipped.map((s) => s.name).sort(), ["feature_extractor", "image_encoder", "safety_checker"]);
  assert.equal(sd1.modelIndex!.options.requires_safety_checker, false);
  assert.equal(readModelIndex(join(FIXTURES, "sd2")).components.find((c) => c.name === "scheduler")!.className, "DDIMScheduler");

  for (const component of ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]) {
    const resolved = await resolvePretrained(join(FIXTURES, "sd2", component), { env: EMPTY_ENV });
    assert.deepEqual([resolved.kind, resolved.path], ["component", join(FIXTURES, "sd2", component)]);
  }
  assert.equal((await resolvePretrained(join(FIXTURES, "unet-sharded"), { env: EMPTY_ENV, variant: "fp16" })).kind, "component");
  assert.equal((await resolvePretrained(join(FIXTURES, "sd1-fp16"), { env: EMPTY_ENV, variant: "fp16" })).kind, "pipeline");
});

test("incomplete and unrecognised local folders are errors naming what is missing", { skip }, async () => {
  const copy = tempDir();
  cpSync(join(FIXTURES, "sd1"), copy, { recursive: true });
  rmSync(join(copy, "vae", "diffusion_pytorch_model.safetensors"));
  rmSync(join(copy, "tokenizer", "merges.txt"));
  await assertRejectsLoading(resolvePretrained(copy, { env: EMPTY_ENV }), `${copy} is incomplete`,
    "vae/diffusion_pytorch_model.safetensors or vae/model.safetensors", "tokenizer/vocab.json and tokenizer/merges.txt (or tokenizer/tokenizer.json)");

  const sharded = tempDir();
  cpSync(join(FIXTURES, "unet-sharded"), sharded, { recursive: true });
  rmSync(join(sharded, "diffusion_pytorch_model-00003-of-00004.safetensors"));
  await assertRejectsLoading(resolvePretrained(sharded, { env: EMPTY_ENV }), "missing diffusion_pytorch_model-00003-of-00004.safetensors");

  const empty = tempDir();
  writeFileSync(join(empty, "notes.txt"), "");
  await assertRejectsLoading(resolvePretrained(empty, { env: EMPTY_ENV }), "neither a diffusers pipeline", "it holds: notes.txt");
  await assertRejectsLoading(resolvePretrained(join(FIXTURES, "sd1", "model_index.json"), { env: EMPTY_ENV }), "is a file");
  await assertRejectsLoading(resolvePretrained("./no/such/../folder", { env: EMPTY_ENV }), "no such folder", "not a repository id");
});

test("the cache layout: a repository folder by path, resolved through refs, and a snapshot path", { skip }, async () => {
  const repoFolder = join(CACHE, "models--tiny--sd1");
  const main = await resolvePretrained(repoFolder, { env: EMPTY_ENV });
  assert.deepEqual([main.kind, main.source, main.repoId, main.commit], ["pipeline", "cache", "tiny/sd1", manifest!.hfCache.main]);
  assert.equal(main.path, join(repoFolder, "snapshots", manifest!.hfCache.main));
  await assertRejectsLoading(resolvePretrained(repoFolder, { env: EMPTY_ENV, revision: "partial" }),
    "without a complete snapshot for revision partial", "unet/config.json");
  await assertRejectsLoading(resolvePretrained(repoFolder, { env: EMPTY_ENV, revision: "v9" }), join(repoFolder, "refs", "v9"), "no such ref");

  const inside = await resolvePretrained(join(main.path, "unet"), { env: EMPTY_ENV });
  assert.deepEqual([inside.kind, inside.repoId], ["component", "tiny/sd1"]);
  assert.deepEqual(findSnapshot(repoFolder, manifest!.hfCache.partial).path, join(repoFolder, "snapshots", manifest!.hfCache.partial));
});

test("a model id through the cache: HF_HUB_CACHE, HF_HOME/hub, the cacheDir option, revisions by ref and by hash", { skip }, async () => {
  const snapshot = join(CACHE, "models--tiny--sd1", "snapshots", manifest!.hfCache.main);
  const viaHubCache = await resolvePretrained("tiny/sd1", { env: { HF_HUB_CACHE: CACHE } });
  assert.deepEqual([viaHubCache.path, viaHubCache.source, viaHubCache.commit], [snapshot, "cache", manifest!.hfCache.main]);

  const home = tempDir();
  symlinkSync(CACHE, join(home, "hub"));
  assert.equal(hubCacheDir({ HF_HOME: home }), join(home, "hub"));
  assert.equal((await resolvePretrained("tiny/sd1", { env: { HF_HOME: home } })).path, join(home, "hub", "models--tiny--sd1", "snapshots", manifest!.hfCache.main));
  assert.equal(hubCacheDir({ HF_HOME: home, HF_HUB_CACHE: "/elsewhere" }), "/elsewhere");
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/xdg" }), "/xdg/huggingface/hub");
  assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/legacy", HF_HOME: home }), "/legacy");

  assert.equal((await resolvePretrained("tiny/sd1", { env: EMPTY_ENV, cacheDir: CACHE })).path, snapshot);
  const byHash = await resolvePretrained("tiny/sd1", { env: EMPTY_ENV, cacheDir: CACHE, revision: manifest!.hfCache.main });
  assert.equal(byHash.path, snapshot);
  // The cache has no fp16 files: each component falls back to its plain weights, as diffusers does.
  assert.equal((await resolvePretrained("tiny/sd1", { env: EMPTY_ENV, cacheDir: CACHE, variant: "fp16" })).path, snapshot);
});

test("offline, a missing model lists the missing files and every place looked", { skip }, async () => {
  const message = await assertRejectsLoading(resolvePretrained("tiny/sd1", { env: { HF_HUB_CACHE: CACHE }, revision: "partial" }),
    "tiny/sd1 (revision partial) is not available offline", "downloading is off",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors or unet/model.safetensors", "text_encoder/config.json",
    "tokenizer/vocab.json and tokenizer/merges.txt", `${resolve("tiny/sd1")} (no such folder)`,
    `${join(CACHE, "models--tiny--sd1", "snapshots", manifest!.hfCache.partial)} (revision partial: incomplete)`);
  assert.ok(!message.includes("scheduler/scheduler_config.json"), "the scheduler config is in the partial snapshot");

  await assertRejectsLoading(resolvePretrained("tiny/absent", { env: { HF_HUB_CACHE: CACHE } }),
    "model_index.json", `${join(CACHE, "models--tiny--absent")} (no such folder)`);
  await assertRejectsLoading(resolvePretrained("tiny/sd1", { env: { HF_HUB_CACHE: CACHE, HF_HUB_OFFLINE: "1" }, revision: "partial", allowDownload: true }),
    "HF_HUB_OFFLINE is set");
  await assertRejectsLoading(resolvePretrained("tiny/sd1", { env: { HF_HUB_CACHE: CACHE }, revision: "0".repeat(40) }),
    `${join(CACHE, "models--tiny--sd1", "snapshots", "0".repeat(40))} (no such snapshot)`);
  assert.ok(hubOffline({ HF_HUB_OFFLINE: "true" }) && hubOffline({ TRANSFORMERS_OFFLINE: "1" }) && !hubOffline({ HF_HUB_OFFLINE: "0" }));
  assert.ok(isRepoId("stable-diffusion-v1-5/stable-diffusion-v1-5") && isRepoId("gpt2") && !isRepoId("a/b/c") && !isRepoId("../x") && !isRepoId("a--b/c"));
});

test("model_index.json: ignored and null components, unsupported classes named, malformed entries", () => {
  const sd15 = parseModelIndex({
    _class_name: "StableDiffusionPipeline", _diffusers_version: "0.6.0",
    feature_extractor: ["transformers", "CLIPImageProcessor"], safety_checker: ["stable_diffusion", "StableDiffusionSafetyChecker"],
    scheduler: ["diffusers", "PNDMScheduler"], text_encoder: ["transformers", "CLIPTextModel"], tokenizer: ["transformers", "CLIPTokenizer"],
    unet: ["diffusers", "UNet2DConditionModel"], vae: ["diffusers", "AutoencoderKL"], requires_safety_checker: true,
  }, "/repo");
  assert.deepEqual(sd15.components.map((c) => c.name), ["scheduler", "text_encoder", "tokenizer", "unet", "vae"]);
  assert.deepEqual(sd15.skipped.map((s) => s.name), ["feature_extractor", "safety_checker"]);
  assert.match(sd15.skipped[1]!.reason, /StableDiffusionSafetyChecker is skipped: the NSFW safety checker is not run/);
  assert.deepEqual([sd15.className, sd15.diffusersVersion, sd15.options], ["StableDiffusionPipeline", "0.6.0", { requires_safety_checker: true }]);
  for (const scheduler of ["DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"]) {
    assert.equal(parseModelIndex({ scheduler: ["diffusers", scheduler] }, "/r").components[0]!.kind, "scheduler");
  }
  assert.throws(() => parseModelIndex({
    unet: ["diffusers", "UNet2DConditionModel"], text_encoder_2: ["transformers", "CLIPTextModelWithProjection"], scheduler: ["diffusers", "LCMScheduler"],
  }, "/sdxl"), (error: Error) => error instanceof ModelLoadingError && error.message.includes("/sdxl/model_index.json: unsupported component classes") &&
    error.message.includes('"text_encoder_2": transformers.CLIPTextModelWithProjection') && error.message.includes('"scheduler": diffusers.LCMScheduler') &&
    error.message.includes("supported: diffusers: UNet2DConditionModel, AutoencoderKL, DDPMScheduler"));
  assert.throws(() => parseModelIndex({ unet: ["diffusers"] }, "/r"), /component "unet" must be \[library, class\]/);
  const dir = tempDir();
  writeFileSync(join(dir, "model_index.json"), "{");
  assert.throws(() => readModelIndex(dir), (error: Error) => error instanceof ModelLoadingError && error.message.includes(join(dir, "model_index.json")));
});

/** A file list like runwayml/stable-diffusion-v1-5's: every format and variant, extra components, root checkpoints. */
const SD15_REPO = [
  ".gitattributes", "README.md", "model_index.json", "v1-5-pruned-emaonly.ckpt", "v1-5-pruned-emaonly.safetensors", "v1-inference.yaml",
  "feature_extractor/preprocessor_config.json",
  "safety_checker/config.json", "safety_checker/model.fp16.safetensors", "safety_checker/model.safetensors", "safety_checker/pytorch_model.bin",
  "scheduler/scheduler_config.json",
  "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors", "text_encoder/pytorch_model.bin",
  "text_encoder/pytorch_model.fp16.bin",
  "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
  "unet/config.json", "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.bin", "unet/diffusion_pytorch_model.fp16.safetensors",
  "unet/diffusion_pytorch_model.non_ema.bin", "unet/diffusion_pytorch_model.non_ema.safetensors", "unet/diffusion_pytorch_model.safetensors",
  "vae/config.json", "vae/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.safetensors", "vae/flax_model.msgpack",
];
const SD15_INDEX = parseModelIndex({
  feature_extractor: ["transformers", "CLIPImageProcessor"], safety_checker: ["stable_diffusion", "StableDiffusionSafetyChecker"],
  scheduler: ["diffusers", "PNDMScheduler"], text_encoder: ["transformers", "CLIPTextModel"], tokenizer: ["transformers", "CLIPTokenizer"],
  unet: ["diffusers", "UNet2DConditionModel"], vae: ["diffusers", "AutoencoderKL"],
}, "runwayml/stable-diffusion-v1-5");

test("download selection: only what loading needs, for the chosen variant", () => {
  const common = ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "text_encoder/config.json", "unet/config.json", "vae/config.json"];
  const plain = selectPipelineFiles(SD15_REPO, SD15_INDEX);
  assert.deepEqual(plain.missing, []);
  assert.deepEqual(plain.files.sort(), [...common, "text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors"].sort());
  // fp16: the variant where a component has it, the plain weights where it has not (vae here).
  const fp16 = selectPipelineFiles(SD15_REPO, SD15_INDEX, { variant: "fp16" });
  assert.deepEqual(fp16.files.sort(), [...common, "text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors"].sort());

  const sharded = [
    "model_index.json", "scheduler/scheduler_config.json", "tokenizer/tokenizer.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json", "text_encoder/model.safetensors", "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors.index.json", "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
    "unet/diffusion_pytorch_model-00002-of-00002.safetensors", "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
    "unet/diffusion_pytorch_model-00001-of-00002.bin",
  ];
  const index = parseModelIndex({ unet: ["diffusers", "UNet2DConditionModel"], vae: ["diffusers", "AutoencoderKL"], text_encoder: ["transformers", "CLIPTextModel"],
    tokenizer: ["transformers", "CLIPTokenizerFast"], scheduler: ["diffusers", "EulerDiscreteScheduler"] }, "sharded");
  const unetFiles = (variant?: string): string[] => selectPipelineFiles(sharded, index, variant ? { variant } : {}).files.filter((f) => f.startsWith("unet/"));
  assert.deepEqual(unetFiles(), ["unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
    "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors"]);
  assert.deepEqual(unetFiles("fp16"), ["unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors"]);
  assert.ok(selectPipelineFiles(sharded, index).files.includes("tokenizer/tokenizer.json"));

  // A repository that only has pickle weights for a component: the selection says what is missing.
  const pickleOnly = SD15_REPO.filter((file) => !(file.startsWith("vae/") && file.endsWith(".safetensors")));
  assert.deepEqual(selectPipelineFiles(pickleOnly, SD15_INDEX).missing, ["vae/diffusion_pytorch_model.safetensors or vae/model.safetensors (or sharded weights with a .safetensors.index.json)"]);
  // A single-model repository (no model_index.json): config, weights, and tokenizer files and the image
  // processor's preprocessor_config.json when present.
  const clip = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "vocab.json", "merges.txt", "tokenizer.json", "preprocessor_config.json"];
  assert.deepEqual(selectPipelineFiles(clip, undefined).files, ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "preprocessor_config.json"]);
});

/**
 * A HubClient whose "hub" is a local folder: lets the download orchestration (selection, pinning one commit,
 * following shard indexes, refs) run offline. The network calls themselves are @huggingface/hub's.
 */
function folderHub(repos: Record<string, string>, commit: string, log: string[]): HubClient {
  return {
    resolveCommit: (repoId) => Promise.resolve(repos[repoId] ? commit : Promise.reject(new Error(`no repo ${repoId}`))),
    listFiles: (repoId) => Promise.resolve(listLocalFiles(repos[repoId]!)),
    downloadFile: (repoId, path, atCommit, cacheDir) => {
      log.push(path);
      const target = join(cacheDir, `models--${repoId.replace("/", "--")}`, "snapshots", atCommit, path);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(repos[repoId]!, path), target);
      return Promise.resolve(target);
    },
  };
}

test("download orchestration: fetches the selection into the cache layout, then resolves offline", { skip }, async () => {
  const cacheDir = tempDir();
  const commit = "a".repeat(40);
  const log: string[] = [];
  const client = folderHub({ "tiny/sd1-fp16": join(FIXTURES, "sd1-fp16"), "tiny/unet": join(FIXTURES, "unet-sharded") }, commit, log);
  const resolved = await resolvePretrained("tiny/sd1-fp16", { env: { HF_HUB_CACHE: cacheDir }, allowDownload: true, variant: "fp16", client });
  assert.deepEqual([resolved.source, resolved.commit, resolved.kind], ["download", commit, "pipeline"]);
  assert.equal(resolved.path, join(cacheDir, "models--tiny--sd1-fp16", "snapshots", commit));
  assert.equal(log[0], "model_index.json");
  assert.ok(log.includes("unet/diffusion_pytorch_model.fp16.safetensors") && !log.includes("unet/diffusion_pytorch_model.safetensors"), log.join(", "));
  assert.equal(readFileSync(join(cacheDir, "models--tiny--sd1-fp16", "refs", "main"), "utf8"), commit);
  // Now offline: found in the cache without the client.
  const again = await resolvePretrained("tiny/sd1-fp16", { env: { HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: "1" }, variant: "fp16" });
  assert.deepEqual([again.source, again.path], ["cache", resolved.path]);

  const failing: HubClient = { ...client, resolveCommit: () => Promise.reject(new Error("fetch failed")) };
  await assertRejectsLoading(resolvePretrained("tiny/elsewhere", { env: { HF_HUB_CACHE: cacheDir }, allowDownload: true, client: failing }),
    `downloading tiny/elsewhere@main into ${cacheDir} failed: fetch failed`, join(cacheDir, "models--tiny--elsewhere"));

  log.length = 0;
  const unet = await downloadPipeline("tiny/unet", { cacheDir, client, revision: "main" });
  assert.deepEqual(unet.files.sort(), ["config.json", "diffusion_pytorch_model-00001-of-00004.safetensors", "diffusion_pytorch_model-00002-of-00004.safetensors",
    "diffusion_pytorch_model-00003-of-00004.safetensors", "diffusion_pytorch_model-00004-of-00004.safetensors", "diffusion_pytorch_model.safetensors.index.json"]);
  assert.equal((await resolvePretrained(unet.path, { env: EMPTY_ENV })).kind, "component");
});
