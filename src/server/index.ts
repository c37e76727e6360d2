/**
 * The service (`hdb serve`): the HTTP API on Fastify, its SQLite storage and data folder, the bounded device queue
 * with worker threads, and the job protocol they share.
 */
export { buildServer, isLoopback, startServer, type RunningServer, type ServerOptions } from "./app.js";
export { JobService, ServiceError, type JobView, type ModelView } from "./jobs.js";
export { isId, newId } from "./ids.js";
export { DeviceQueue, QueueFullError, type JobQueue } from "./queue.js";
export { QUEUE_NAME, RedisQueue, redisConnection, runRedisWorker } from "./redis-queue.js";
export { MODEL_FILES, type EngineConfig, type JobSpec, type RunnerMessage } from "./protocol.js";
export { Store } from "./store.js";
export { cleanPhoto, DEFAULT_UPLOAD_LIMITS, sniffImage, UploadError, type UploadLimits } from "./uploads.js";
