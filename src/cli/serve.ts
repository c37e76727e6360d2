/**
 * `hdb serve`: the HTTP service (src/server/) on the bundled mini-world model by default: upload a face, watch it
 * personalise (server-sent events with ETA), generate, download the LiDB file and both LoRA layouts. Runs until
 * SIGINT/SIGTERM, then stops accepting, and leaves any running job to be run again at the next start.
 */
import path from "node:path";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { isLoopback, runRedisWorker, startServer } from "../server/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";

export const SERVE_SPEC = defineCommand({
  name: "serve",
  summary: "the HTTP service: personalise from an uploaded face, watch progress, generate, download LiDB/LoRA files",
  usage: "[flags]",
  details: `Serves the API (OpenAPI document at /openapi.json) on --host:--port. Jobs and models are kept in --data
(SQLite + files): a restart loses no accepted job. Beyond loopback an API token is required (--token or
HDB_API_TOKEN; clients send "Authorization: Bearer <token>").`,
  flags: {
    host: { type: "string", value: "<address>", default: "127.0.0.1", description: "the address to listen on" },
    port: { type: "integer", min: 0, max: 65535, default: 8080, description: "the port (0: any free one, printed)" },
    data: { type: "string", value: "<folder>", default: "hdb-data", description: "the data folder: database, uploads, models, images" },
    model: { type: "string", value: "<folder>", defaultText: "the bundled models/miniworld/base", description: "the base model (diffusers folder)" },
    hypernetwork: { type: "string", value: "<folder>", defaultText: "the bundled models/miniworld/hypernetwork", description: "the HyperNetwork trained for that model" },
    device: { type: "string", multiple: true, value: "<device>", description: "an engine device, one worker each (repeat: cuda:0, cuda:1)", defaultText: "cpu" },
    threads: { type: "integer", min: 1, description: "CPU threads per worker", defaultText: "libtorch's" },
    token: { type: "string", value: "<secret>", description: "API token (≥ 16 characters), required beyond loopback", defaultText: "$HDB_API_TOKEN" },
    "rate-limit": { type: "integer", min: 1, default: 600, description: "requests per client per minute" },
    "max-queue": { type: "integer", min: 1, default: 32, description: "jobs that may wait (more are refused with 503)" },
    "max-upload-mb": { type: "number", above: 0, max: 100, default: 10, description: "the size limit of one uploaded photo, in MiB" },
    "max-photos": { type: "integer", min: 1, max: 16, default: 4, description: "photos per personalisation" },
    "max-pixels": { type: "integer", min: 1024, default: 25_000_000, description: "pixels per uploaded photo (width × height)" },
    redis: { type: "string", value: "<url>", description: "scale out: jobs go to this Redis (BullMQ) for worker processes", defaultText: "$REDIS_URL, else local worker threads" },
    worker: { type: "boolean", description: "run as a worker process: take jobs from --redis and run them (no HTTP)" },
    "worker-lock": { type: "number", above: 0, default: 60, value: "<seconds>", description: "--worker: a job whose worker shows no sign of life this long goes to another worker" },
  },
  examples: [
    "hdb serve",
    "hdb serve --port 9000 --data /var/lib/hdb",
    "HDB_API_TOKEN=$(openssl rand -hex 16) hdb serve --host 0.0.0.0",
    "hdb serve --redis redis://10.0.0.5:6379",
    "hdb serve --worker --redis redis://10.0.0.5:6379 --device cuda:0",
  ],
});

export async function runServe(argv: string[]): Promise<void> {
  const { values } = parseFlags(SERVE_SPEC, argv);
  const redis = values.redis ?? (process.env["REDIS_URL"] || undefined);
  const model = values.model ?? path.join(bundledMiniworldDir(), "base");
  const hypernetwork = values.hypernetwork ?? path.join(bundledMiniworldDir(), "hypernetwork");
  const log = (line: string): void => void process.stderr.write(`hdb serve: ${line}\n`);
  if (values.worker) {
    if (redis === undefined) throw new Error("--worker takes jobs from Redis: give --redis <url> (or set REDIS_URL)");
    const worker = await runRedisWorker({
      url: redis, log, lockSeconds: values["worker-lock"],
      engine: { model, hypernetwork, device: values.device[0] ?? "cpu", ...(values.threads === undefined ? {} : { threads: values.threads }) },
    });
    process.stdout.write(`hdb serve: worker ready, taking jobs from ${redis.replace(/\/\/[^@/]*@/, "//")}\n`);
    await untilSignal(log);
    await worker.close();
    return;
  }
  const token = values.token ?? process.env["HDB_API_TOKEN"];
  if (!isLoopback(values.host) && (token === undefined || token.length < 16)) {
    throw new Error(`--host ${values.host} is beyond loopback: give an API token of at least 16 characters (--token or HDB_API_TOKEN)`);
  }
  const server = await startServer({
    host: values.host, port: values.port, dataDir: path.resolve(values.data),
    model, hypernetwork, ...(redis === undefined ? {} : { redis }),
    devices: values.device.length > 0 ? values.device : ["cpu"], ...(values.threads === undefined ? {} : { threads: values.threads }),
    ...(token === undefined ? {} : { token }), rateLimit: values["rate-limit"], maxWaiting: values["max-queue"],
    maxUploadBytes: Math.round(values["max-upload-mb"] * 1024 * 1024), maxPhotos: values["max-photos"], upload: { maxPixels: values["max-pixels"] }, log,
  });
  process.stdout.write(`hdb serve: listening on ${server.url} (data in ${path.resolve(values.data)}; API at ${server.url}/openapi.json)\n`);
  await untilSignal(log);
  try {
    await server.close();
  } catch (error) {
    log(`stopping failed: ${(error as Error).message}`);
  }
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignal(log: (line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log(`${signal}: stopping`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
