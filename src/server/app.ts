/**
 * `hdb serve`'s HTTP API on Fastify: every route has a JSON schema (validated by Fastify's Ajv; the same schemas
 * make the OpenAPI 3 document at /openapi.json through @fastify/swagger), uploads are multipart (@fastify/multipart,
 * bounded in bytes, parts and fields; photos re-encoded by src/server/uploads.ts), and jobs run on the device queue
 * (src/server/jobs.ts, src/server/queue.ts) while the event loop only answers requests.
 *
 *   POST   /personalizations           multipart photo(s) + options → 202 a personalisation job
 *   POST   /generations                JSON (model, prompt, seed, steps, …) → 202 a generation job
 *   GET    /jobs, /jobs/:id            jobs with status, place in line, progress and ETA
 *   GET    /jobs/:id/events            the job as server-sent events until it finishes
 *   GET    /jobs/:id/images/:index     a generation's image (PNG)
 *   DELETE /jobs/:id                   cancel a waiting job, or delete a finished one
 *   GET    /models, /models/:id        personalised models
 *   GET    /models/:id/{lidb,lora-diffusers,lora-kohya,photo}   downloads
 *   DELETE /models/:id
 *   GET    /health, /openapi.json
 *
 * Security: a bearer token is required (except for /health) whenever one is set, and must be set to bind beyond
 * loopback; a per-client rate limit (@fastify/rate-limit); no CORS headers (cross-origin pages cannot read the
 * answers); ids are checked against their pattern before any use, so no request names a path; every error is one
 * JSON line `{ error, statusCode }`, 4xx for anything a client sent.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import multipart from "@fastify/multipart";
import fastifyStatic from "@fastify/static";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { STYLES } from "../miniworld/styles.js";
import { ID_PATTERN } from "./ids.js";
import { JobService, ServiceError, type GenerateParams } from "./jobs.js";
import { MODEL_FILES } from "./protocol.js";
import { DeviceQueue, type JobQueue } from "./queue.js";
import { RedisQueue } from "./redis-queue.js";
import { Store } from "./store.js";
import { cleanPhoto, DEFAULT_UPLOAD_LIMITS, type UploadLimits } from "./uploads.js";

export interface ServerOptions {
  host: string;
  port: number;
  /** The data folder (database and files). */
  dataDir: string;
  /** The base model (diffusers folder) and its HyperNetwork. */
  model: string;
  hypernetwork: string;
  /** Engine devices, one worker thread each (default ["cpu"]). */
  devices?: string[];
  threads?: number;
  /** Required (Authorization: Bearer …) on every route but /health when set; must be set beyond loopback. */
  token?: string;
  /** Requests per client per minute. */
  rateLimit: number;
  /** Jobs that may wait behind the running ones. */
  maxWaiting: number;
  /** Bytes per uploaded photo. */
  maxUploadBytes: number;
  /** Photos per personalisation. */
  maxPhotos: number;
  upload?: Partial<UploadLimits>;
  /** A redis:// URL: jobs go to a BullMQ queue that `hdb serve --worker` processes run, instead of local worker threads. */
  redis?: string;
  /** The built page (index.html, app.js, app.css); default: the package's web/dist. */
  webDir?: string;
  /** Informational lines (start, recovery, failed jobs). */
  log?: (line: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  service: JobService;
  /** http://host:port */
  url: string;
  close(): Promise<void>;
}

/** Routes without a token: liveness, and the page itself (it holds no data; it asks for the token to call the API). */
const PUBLIC_ROUTES = new Set(["/health", "/", "/app/*"]);

/** The built page inside the package (dist/src/server/ → web/dist/). */
const DEFAULT_WEB_DIR = fileURLToPath(new URL("../../../web/dist/", import.meta.url));

/** The page's policy: its own scripts, styles and API only; images from the API and the photo being chosen (blob:). */
const PAGE_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** Ajv keyword `isFile`: an uploaded file (a Buffer under attachFieldsToBody "keyValues"); documented as a binary string. */
interface AjvLike {
  addKeyword(definition: { keyword: string; compile: (schema: unknown, parent: Record<string, unknown>) => (data: unknown) => boolean; error: { message: string } }): AjvLike;
}

function ajvFileKeyword(ajv: AjvLike): AjvLike {
  return ajv.addKeyword({
    keyword: "isFile",
    compile: (_schema: unknown, parent: Record<string, unknown>) => {
      parent["type"] = "string";
      parent["format"] = "binary";
      delete parent["isFile"];
      return (data: unknown) => Buffer.isBuffer(data);
    },
    error: { message: "should be a file" },
  });
}

const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", pattern: ID_PATTERN } } } as const;
const errorSchema = { type: "object", properties: { statusCode: { type: "integer" }, error: { type: "string" } } } as const;
const jobSchema = {
  type: "object", additionalProperties: true,
  properties: {
    id: { type: "string" }, kind: { type: "string", enum: ["personalize", "generate"] },
    status: { type: "string", enum: ["queued", "running", "succeeded", "failed", "cancelled"] },
    position: { type: ["integer", "null"], description: "0 running, 1.. place in line, null once finished" },
    progress: {
      type: ["object", "null"], additionalProperties: true,
      properties: { label: { type: "string" }, done: { type: "number" }, total: { type: "number" }, fraction: { type: "number" }, etaSeconds: { type: ["number", "null"] } },
    },
    error: { type: ["string", "null"] },
  },
} as const;
const modelSchema = { type: "object", additionalProperties: true, properties: { id: { type: "string" }, name: { type: "string" }, createdAt: { type: "string" } } } as const;
const listQuery = { type: "object", additionalProperties: false, properties: { limit: { type: "integer", minimum: 1, maximum: 500, default: 100 }, token: { type: "string" } } } as const;
const tokenQuery = { type: "object", additionalProperties: false, properties: { token: { type: "string" } } } as const;

const personalizeBody = (maxPhotos: number) => ({
  type: "object", additionalProperties: false, required: ["photo"],
  properties: {
    photo: {
      description: `the face photo(s): PNG, JPEG or WebP; repeat the field for up to ${maxPhotos} photos of the person (the first feeds the HyperNetwork)`,
      anyOf: [{ isFile: true }, { type: "array", minItems: 1, maxItems: maxPhotos, items: { isFile: true } }],
    },
    name: { type: "string", maxLength: 80, default: "", description: "a label for the model" },
    steps: { type: "integer", minimum: 0, maximum: 400, default: 40, description: "rank-relaxed fine-tuning steps (0: the HyperNetwork's prediction alone)" },
    rank: { type: "integer", minimum: 1, maximum: 16, default: 4, description: "rank r of the relaxed LoRA" },
    learningRate: { type: "number", exclusiveMinimum: 0, maximum: 0.1, default: 0.001 },
    seed: { type: "integer", minimum: 0, maximum: 2147483647, default: 0 },
    iterations: { type: "integer", minimum: 1, maximum: 16, description: "the HyperNetwork's refinement rounds k (default: the network's)" },
  },
});

const generateBody = {
  type: "object", additionalProperties: false, required: ["prompt"],
  properties: {
    model: { type: "string", anyOf: [{ const: "base" }, { pattern: ID_PATTERN }], default: "base", description: "\"base\" or a personalised model's id" },
    prompt: { type: "string", minLength: 1, maxLength: 500, description: "the prompt; a personalised model's person is \"sks\" (\"a sks face as a pencil sketch\")" },
    negativePrompt: { type: "string", maxLength: 500, default: "" },
    seed: { type: "integer", minimum: 0, maximum: 4294967295, default: 0 },
    steps: { type: "integer", minimum: 1, maximum: 100, default: 25 },
    guidance: { type: "number", minimum: 0, maximum: 30, default: 5 },
    images: { type: "integer", minimum: 1, maximum: 4, default: 1 },
    weight: { type: "number", minimum: 0, maximum: 2, default: 1, description: "multiplies the person's ΔW" },
  },
} as const;

/**
 * The first field of a JSON body whose JSON type is not its schema's (Ajv's coercion, which the multipart form's text
 * fields need, would otherwise turn 123 into "123" and ["a"] into "a"); null when all are as declared.
 */
function wrongJsonType(body: unknown, properties: Record<string, { type?: string }>): string | null {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  for (const [key, value] of Object.entries(body)) {
    const type = properties[key]?.type;
    if (type === undefined) continue;
    const ok = type === "string" ? typeof value === "string" : type === "integer" ? Number.isInteger(value) : type === "number" ? typeof value === "number" : true;
    if (!ok) return `body/${key} must be ${type}, got ${Array.isArray(value) ? "array" : value === null ? "null" : typeof value}`;
  }
  return null;
}

/** A constant-time check of the request's token (Authorization: Bearer …, or ?token= where a header cannot be set: EventSource, links). */
function tokenMatches(request: FastifyRequest, expected: Buffer): boolean {
  const header = request.headers.authorization;
  const query = (request.query as Record<string, unknown> | undefined)?.["token"];
  const given = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : typeof query === "string" ? query : null;
  if (given === null) return false;
  return timingSafeEqual(createHash("sha256").update(given).digest(), expected);
}

/** Builds the app (routes, limits, queue) on a data folder; `listen` is the caller's (startServer). */
export async function buildServer(options: ServerOptions): Promise<{ app: FastifyInstance; service: JobService; store: Store; queue: JobQueue }> {
  if (!isLoopback(options.host) && (options.token === undefined || options.token.length < 16)) {
    throw new Error(`serving on ${options.host} (beyond loopback) needs an API token of at least 16 characters: --token or HDB_API_TOKEN`);
  }
  const uploadLimits: UploadLimits = { ...DEFAULT_UPLOAD_LIMITS, ...options.upload };
  const store = new Store(options.dataDir);
  const queue: JobQueue = options.redis !== undefined
    ? new RedisQueue({ url: options.redis, maxWaiting: options.maxWaiting, ...(options.log ? { log: options.log } : {}) })
    : new DeviceQueue({
      engine: { model: options.model, hypernetwork: options.hypernetwork, device: options.devices?.[0] ?? "cpu", ...(options.threads === undefined ? {} : { threads: options.threads }) },
      devices: options.devices ?? ["cpu"], maxWaiting: options.maxWaiting,
    });
  const service = new JobService(store, queue, { ...(options.log ? { log: options.log } : {}) });
  service.setMaxListeners(0);

  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Ajv: coerce multipart's text fields to their types, fill defaults, refuse (not drop) unknown fields.
    ajv: { customOptions: { coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false }, plugins: [ajvFileKeyword as never] },
    return503OnClosing: true,
    // Open event streams must not hold a stop up.
    forceCloseConnections: true,
    connectionTimeout: 60_000,
    requestTimeout: 120_000,
  });
  /** Requests whose handler began: an error before it (a body that cannot be parsed) is the client's. */
  const handlerStarted = new WeakSet<FastifyRequest>();

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "HyperDreamBooth service (hdb serve)", version: "0.1.0", description: "Upload a face, personalise the model (HyperNetwork + rank-relaxed fast fine-tuning), generate, download the LiDB file and standard LoRAs." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      ...(options.token === undefined ? {} : { security: [{ bearer: [] }] }),
    },
  });
  await app.register(rateLimit, {
    max: options.rateLimit, timeWindow: 60_000,
    errorResponseBuilder: (_request, context) => ({ statusCode: 429, error: `rate limit: at most ${context.max} requests a minute per client; retry in ${Math.ceil(context.ttl / 1000)} s` }),
  });
  await app.register(multipart, {
    attachFieldsToBody: "keyValues",
    limits: { fileSize: options.maxUploadBytes, files: options.maxPhotos, fields: 12, fieldSize: 1024, fieldNameSize: 64, parts: options.maxPhotos + 12, headerPairs: 32 },
  });

  const expected = options.token === undefined ? null : createHash("sha256").update(options.token).digest();
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-content-type-options", "nosniff").header("referrer-policy", "no-referrer").header("x-frame-options", "DENY");
    if (expected !== null && !PUBLIC_ROUTES.has(request.routeOptions.url ?? "") && !tokenMatches(request, expected)) {
      return reply.code(401).header("www-authenticate", "Bearer").send({ statusCode: 401, error: "an API token is required: Authorization: Bearer <token>" });
    }
    return undefined;
  });
  app.addHook("preHandler", async (request) => {
    handlerStarted.add(request);
  });

  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    let status = error.statusCode ?? 500;
    // Anything that fails before the handler runs (parsing a malformed or truncated body) is the client's.
    if (status >= 500 && !handlerStarted.has(request) && !(error instanceof ServiceError) && error.name !== "QueueFullError") status = 400;
    if (status >= 500 && error.name !== "QueueFullError") options.log?.(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    if (error.name === "QueueFullError") void reply.header("retry-after", "30");
    void reply.code(status).send({ statusCode: status, error: status >= 500 && error.name !== "QueueFullError" ? "internal error (logged)" : error.message });
  });
  // Unknown routes count against the rate limit too (a scanner walks them).
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (request, reply) => {
    void reply.code(404).send({ statusCode: 404, error: `no route ${request.method} ${request.url.split("?")[0]!.slice(0, 200)}` });
  });

  // Liveness probes poll often and cost nothing: not rate-limited.
  app.get("/health", { config: { rateLimit: false }, schema: { summary: "liveness and the queue", response: { 200: { type: "object", additionalProperties: true } } } }, async () => ({
    status: "ok", running: queue.running.length, waiting: queue.waiting.length, devices: queue.devices, ready: queue.ready, uptimeSeconds: process.uptime(),
  }));

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  // The page (web/, built into web/dist) at /, its assets under /app/.
  const webDir = options.webDir ?? DEFAULT_WEB_DIR;
  await app.register(fastifyStatic, { root: webDir, prefix: "/app/", index: false, serve: true, cacheControl: true, maxAge: 3_600_000 });
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    if (!existsSync(`${webDir}/index.html`)) return reply.code(404).send({ statusCode: 404, error: `the page is not built (${webDir}): npm run build:web` });
    return reply.header("content-security-policy", PAGE_CSP).header("cache-control", "no-cache").sendFile("index.html");
  });

  app.get("/styles", { schema: { summary: "style presets the mini-world model knows: a prompt is \"a <identifier> face <phrase>\"", querystring: tokenQuery, response: { 200: { type: "array", items: { type: "object", additionalProperties: true } } } } }, async () =>
    STYLES.map((style) => ({ name: style.name, kind: style.kind, phrase: style.prompt })));

  app.post("/personalizations", {
    schema: {
      summary: "personalise the model from face photo(s): a job (HyperNetwork prediction + rank-relaxed fine-tuning)", consumes: ["multipart/form-data"],
      body: personalizeBody(options.maxPhotos), response: { 202: jobSchema, 400: errorSchema, 413: errorSchema, 415: errorSchema, 422: errorSchema, 503: errorSchema },
    },
  }, async (request, reply) => {
    const body = request.body as { photo: Buffer | Buffer[]; name: string; steps: number; rank: number; learningRate: number; seed: number; iterations?: number };
    const uploads = Array.isArray(body.photo) ? body.photo : [body.photo];
    const photos: Buffer[] = [];
    for (const [i, bytes] of uploads.entries()) photos.push((await cleanPhoto(bytes, `photo ${i + 1}`, uploadLimits)).png);
    const job = service.submitPersonalization(photos, {
      name: body.name,
      settings: { steps: body.steps, rank: body.rank, learningRate: body.learningRate, seed: body.seed, ...(body.iterations === undefined ? {} : { rounds: body.iterations }) },
    });
    return reply.code(202).header("location", `/jobs/${job.id}`).send(job);
  });

  app.post("/generations", {
    // JSON only: a form (which the multipart parser would read) is refused before it is parsed.
    onRequest: async (request, reply) => {
      if (/^\s*multipart\//i.test(request.headers["content-type"] ?? "")) return reply.code(415).send({ statusCode: 415, error: "POST /generations takes application/json" });
      return undefined;
    },
    // Ajv coerces types for the form fields of an upload; a JSON body must have its types as they are.
    preValidation: async (request, reply) => {
      const wrong = wrongJsonType(request.body, generateBody.properties);
      if (wrong !== null) return reply.code(400).send({ statusCode: 400, error: wrong });
      return undefined;
    },
    schema: { summary: "images of a personalised model (or the base model) for a prompt: a job", body: generateBody, response: { 202: jobSchema, 400: errorSchema, 404: errorSchema, 415: errorSchema, 503: errorSchema } },
  }, async (request, reply) => {
    const body = request.body as Omit<GenerateParams, "modelId"> & { model: string };
    const { model, ...rest } = body;
    const job = service.submitGeneration({ ...rest, modelId: model === "base" ? null : model });
    return reply.code(202).header("location", `/jobs/${job.id}`).send(job);
  });

  app.get("/jobs", { schema: { summary: "jobs, newest first", querystring: listQuery, response: { 200: { type: "array", items: jobSchema } } } }, async (request) =>
    service.jobs((request.query as { limit: number }).limit));

  app.get("/jobs/:id", { schema: { summary: "a job: status, place in line, progress with ETA, result", params: idParam, querystring: tokenQuery, response: { 200: jobSchema, 404: errorSchema } } }, async (request, reply) => {
    const job = service.view((request.params as { id: string }).id);
    return job ?? reply.code(404).send({ statusCode: 404, error: "no such job" });
  });

  app.get("/jobs/:id/events", {
    schema: { summary: "the job as server-sent events (event: job, data: the job) until it finishes", params: idParam, querystring: tokenQuery, produces: ["text/event-stream"] },
  }, (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (service.view(id) === null) return reply.code(404).send({ statusCode: 404, error: "no such job" });
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform", connection: "keep-alive", "x-accel-buffering": "no", "x-content-type-options": "nosniff" });
    let last = "";
    const send = (): void => {
      const job = service.view(id);
      if (job === null) return close();
      const text = JSON.stringify(job);
      if (text !== last) raw.write(`event: job\ndata: ${text}\n\n`);
      last = text;
      if (job.status !== "queued" && job.status !== "running") close();
    };
    const listener = (jobId: string): void => {
      if (jobId === id) send();
    };
    const heartbeat = setInterval(() => raw.write(": keep-alive\n\n"), 15_000);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      service.off("job", listener);
      raw.end();
    };
    service.on("job", listener);
    request.raw.on("close", close);
    send();
    return reply;
  });

  app.get("/jobs/:id/images/:index", {
    schema: {
      summary: "a generation's image", produces: ["image/png"], querystring: tokenQuery,
      params: { type: "object", required: ["id", "index"], properties: { id: { type: "string", pattern: ID_PATTERN }, index: { type: "integer", minimum: 0, maximum: 3 } } },
    },
  }, async (request, reply) => {
    const { id, index } = request.params as { id: string; index: number };
    const file = service.imageFile(id, index);
    if (file === null) return reply.code(404).send({ statusCode: 404, error: "no such image" });
    return reply.type("image/png").header("cache-control", "private, max-age=86400").send(createReadStream(file));
  });

  app.delete("/jobs/:id", { schema: { summary: "cancel a waiting job, or delete a finished one (and its images)", params: idParam, response: { 200: { type: "object", additionalProperties: true }, 404: errorSchema, 409: errorSchema } } }, async (request) => {
    const id = (request.params as { id: string }).id;
    return { id, outcome: service.deleteJob(id) };
  });

  app.get("/models", { schema: { summary: "personalised models, newest first", querystring: listQuery, response: { 200: { type: "array", items: modelSchema } } } }, async (request) =>
    service.models((request.query as { limit: number }).limit));

  app.get("/models/:id", { schema: { summary: "a personalised model: its files and summary", params: idParam, querystring: tokenQuery, response: { 200: modelSchema, 404: errorSchema } } }, async (request, reply) => {
    const model = service.model((request.params as { id: string }).id);
    return model ?? reply.code(404).send({ statusCode: 404, error: "no such model" });
  });

  const downloads = [...Object.keys(MODEL_FILES), "photo"] as (keyof typeof MODEL_FILES | "photo")[];
  app.get("/models/:id/:file", {
    schema: {
      summary: "download: the LiDB file, the LoRA (diffusers or kohya layout), or the reference photo", produces: ["application/octet-stream", "image/png"], querystring: tokenQuery,
      params: { type: "object", required: ["id", "file"], properties: { id: { type: "string", pattern: ID_PATTERN }, file: { type: "string", enum: downloads } } },
    },
  }, async (request, reply) => {
    const { id, file } = request.params as { id: string; file: (typeof downloads)[number] };
    const full = service.modelFile(id, file);
    if (full === null) return reply.code(404).send({ statusCode: 404, error: "no such model" });
    if (file === "photo") return reply.type("image/png").send(createReadStream(full));
    const suffix = file === "lidb" ? "lidb" : file === "lora-diffusers" ? "lora-diffusers" : "lora-kohya";
    return reply.type("application/octet-stream").header("content-disposition", `attachment; filename="hdb-${id.slice(0, 8)}.${suffix}.safetensors"`).send(createReadStream(full));
  });

  app.delete("/models/:id", { schema: { summary: "delete a personalised model and its files", params: idParam, response: { 200: { type: "object", additionalProperties: true }, 404: errorSchema } } }, async (request) => {
    const id = (request.params as { id: string }).id;
    service.deleteModel(id);
    return { id, outcome: "deleted" };
  });

  app.addHook("onClose", async () => {
    await queue.close();
    store.close();
  });
  return { app, service, store, queue };
}

/** Builds the server, recovers the jobs a stop interrupted, starts the workers and listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { app, service, queue } = await buildServer(options);
  try {
    service.recover();
    queue.start();
    const address = await app.listen({ host: options.host, port: options.port });
    return { app, service, url: address, close: () => app.close() };
  } catch (error) {
    await app.close();
    throw error;
  }
}
