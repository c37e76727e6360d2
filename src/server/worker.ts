/**
 * The worker thread that runs one device's engine work (src/server/execute.ts), so the server's event loop never
 * waits on libtorch. It takes `run` commands one at a time (the queue never sends a second before the first is
 * answered) and answers with progress, then `done` or `failed` (src/server/protocol.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import { Executor } from "./execute.js";
import type { EngineConfig, RunnerCommand, RunnerMessage } from "./protocol.js";

const port = parentPort;
if (port === null) throw new Error("src/server/worker.ts runs as a worker thread (new Worker(...)), not as a script");

const executor = new Executor(workerData as EngineConfig);
const send = (message: RunnerMessage): void => port.postMessage(message);

port.on("message", (command: RunnerCommand) => {
  if (command.type === "stop") {
    executor.dispose();
    port.close();
    return;
  }
  const { job } = command;
  executor.run(job, (update) => send({ type: "progress", jobId: job.jobId, ...update })).then(
    (result) => send({ type: "done", jobId: job.jobId, result }),
    (error: unknown) => send({ type: "failed", jobId: job.jobId, message: error instanceof Error ? error.message : String(error) }),
  );
});

send({ type: "ready" });
