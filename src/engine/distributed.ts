/**
 * Data parallel over processes: process groups on libtorch's c10d, the library torch.distributed is made of.
 *
 * Each process (a rank) holds a full copy of the model and computes its share of every step's batch; before the
 * update, the ranks average their gradients (an allreduce), so every rank takes the same step that one process
 * on the whole batch would take, as PyTorch's DistributedDataParallel does. The addon (native/engine.cc, section
 * "distributed") makes the group from c10d's own pieces: a TCPStore for the rendezvous, Gloo for CPU tensors
 * and, in a build with NCCL, NCCL for CUDA tensors. Nothing here sends a byte or adds a number itself.
 *
 * Processes are started by `torchrun --no-python --nproc-per-node N node dist/src/cli/hdb.js …`, or by the
 * CLI's own `--nproc N` (training/launch.ts), both with torchrun's environment: RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR, MASTER_PORT (and, under torchrun, TORCHELASTIC_USE_AGENT_STORE: its agent already hosts the store).
 * A rank that dies makes the others' next collective fail at once (Gloo sees the connection reset); one that
 * stops answering makes it fail after the group's timeout; either way with an error (code HDB_DISTRIBUTED)
 * naming the operation and the rank, never a hang.
 */
import { noGrad } from "./autograd.js";
import { tensor, zerosLike } from "./creation.js";
import { tidy } from "./lifetime.js";
import { native } from "./native/addon.js";
import type { Tensor } from "./tensor.js";

/** torch.distributed's default timeout of a process group (its rendezvous and each collective). */
export const DISTRIBUTED_TIMEOUT_SECONDS = 1800;

/** The launch environment of this process, as torchrun (or `--nproc`) sets it. */
export interface DistributedEnvironment {
  rank: number;
  worldSize: number;
  /** The rank on this machine: which GPU a CUDA rank takes. */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** torchrun's agent hosts the rendezvous store: every rank connects to it as a client. */
  agentStore: boolean;
}

export interface ProcessGroupOptions extends Partial<DistributedEnvironment> {
  /**
   * Seconds the rendezvous and each collective wait for the other ranks before failing
   * (default: $HDB_DISTRIBUTED_TIMEOUT, else torch's 1800).
   */
  timeoutSeconds?: number;
  /**
   * Where the reduced tensors live: "cpu" (Gloo, the default), or "cuda" / "cuda:<i>" (NCCL for CUDA tensors,
   * on cuda:<localRank> unless an index is given; Gloo stays for CPU tensors).
   */
  device?: string;
}

/** A group of processes that reduce tensors together. Every rank must make the same calls in the same order. */
export interface ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  /** The c10d backends of this group: "gloo", and "nccl" for a CUDA group. */
  readonly backends: readonly string[];
  /** Sums (or averages: the sum divided by the world size) floating tensors across the ranks, in place. */
  allReduce(tensors: readonly Tensor[], op?: "sum" | "mean"): void;
  /** Copies `root`'s values of the tensors to every rank, in place. */
  broadcast(tensors: readonly Tensor[], root?: number): void;
  /** Returns once every rank has reached it. */
  barrier(): void;
  /** Closes the group's connections (idempotent). */
  destroy(): void;
  [Symbol.dispose](): void;
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const text = env[name];
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}=${text} is not an integer ≥ ${min}`);
  return value;
}

/**
 * The torchrun environment of this process, or null when it was not launched as a rank (no WORLD_SIZE).
 * Throws, naming the variable, when it is incomplete or inconsistent.
 */
export function distributedEnvironment(env: NodeJS.ProcessEnv = process.env): DistributedEnvironment | null {
  const worldSize = integer(env, "WORLD_SIZE", 1);
  if (worldSize === undefined) return null;
  const rank = integer(env, "RANK", 0);
  const masterPort = integer(env, "MASTER_PORT", 1);
  const masterAddr = env["MASTER_ADDR"];
  const missing = [rank === undefined && "RANK", masterAddr === undefined && "MASTER_ADDR", masterPort === undefined && "MASTER_PORT"].filter((m) => m !== false);
  if (missing.length > 0) throw new Error(`WORLD_SIZE=${worldSize} is set but ${missing.join(", ")} not: launch with torchrun or --nproc`);
  if (rank! >= worldSize) throw new Error(`RANK=${rank} is not below WORLD_SIZE=${worldSize}`);
  return {
    rank: rank!, worldSize, localRank: integer(env, "LOCAL_RANK", 0) ?? rank!, masterAddr: masterAddr!, masterPort: masterPort!,
    agentStore: env["TORCHELASTIC_USE_AGENT_STORE"] === "True",
  };
}

function timeoutSeconds(options: ProcessGroupOptions, env: NodeJS.ProcessEnv): number {
  const fromEnv = env["HDB_DISTRIBUTED_TIMEOUT"];
  const seconds = options.timeoutSeconds ?? (fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : DISTRIBUTED_TIMEOUT_SECONDS);
  if (!(seconds > 0)) throw new Error(`the process group's timeout must be a positive number of seconds, got ${fromEnv ?? seconds}`);
  return seconds;
}

/** Gloo's network device, as torch.distributed picks it: GLOO_SOCKET_IFNAME's interfaces; loopback when the master is. */
function glooDevice(masterAddr: string, env: NodeJS.ProcessEnv): string {
  const interfaces = env["GLOO_SOCKET_IFNAME"];
  if (interfaces) return `interface:${interfaces}`;
  return /^(127\.|localhost$|::1$)/.test(masterAddr) ? `host:${masterAddr}` : "default";
}

/**
 * Joins the process group of this launch (torchrun's environment unless `options` says otherwise); blocks until
 * every rank has joined, or fails after the timeout naming the rendezvous address.
 */
export function initProcessGroup(options: ProcessGroupOptions = {}, env: NodeJS.ProcessEnv = process.env): ProcessGroup {
  const launched = distributedEnvironment(env);
  const rank = options.rank ?? launched?.rank;
  const worldSize = options.worldSize ?? launched?.worldSize;
  const masterAddr = options.masterAddr ?? launched?.masterAddr;
  const masterPort = options.masterPort ?? launched?.masterPort;
  if (rank === undefined || worldSize === undefined || masterAddr === undefined || masterPort === undefined) {
    throw new Error("initProcessGroup: this process was not launched as a rank (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT unset): " +
      "launch it with `torchrun --no-python --nproc-per-node N node …` or the CLI's --nproc N, or pass them");
  }
  const localRank = options.localRank ?? launched?.localRank ?? rank;
  const agentStore = options.agentStore ?? launched?.agentStore ?? false;
  const device = options.device ?? "cpu";
  const cuda = /^cuda(:(\d+))?$/.exec(device);
  if (device !== "cpu" && !cuda) throw new Error(`initProcessGroup: device must be cpu, cuda or cuda:<index>, got ${device}`);
  const cudaDevice = cuda ? Number(cuda[2] ?? localRank) : -1;
  const timeoutMs = Math.round(timeoutSeconds(options, env) * 1000);
  // The store's keys go under "hdb/": under torchrun the store is the agent's, which keeps keys of its own.
  const id = native.distInit(masterAddr, masterPort, rank, worldSize, timeoutMs, rank === 0 && !agentStore, "hdb/", glooDevice(masterAddr, env), cudaDevice);
  return new NativeProcessGroup(id, rank, worldSize, localRank, cuda ? ["gloo", "nccl"] : ["gloo"]);
}

class NativeProcessGroup implements ProcessGroup {
  #id: number | null;

  constructor(id: number, readonly rank: number, readonly worldSize: number, readonly localRank: number, readonly backends: readonly string[]) {
    this.#id = id;
  }

  get #group(): number {
    if (this.#id === null) throw new Error(`the process group of rank ${this.rank} was destroyed`);
    return this.#id;
  }

  allReduce(tensors: readonly Tensor[], op: "sum" | "mean" = "sum"): void {
    native.distAllReduce(this.#group, tensors.map((t) => t.handle), "sum");
    if (op === "mean") noGrad(() => tensors.forEach((t) => t.div_(this.worldSize)));
  }

  broadcast(tensors: readonly Tensor[], root = 0): void {
    native.distBroadcast(this.#group, tensors.map((t) => t.handle), root);
  }

  barrier(): void {
    native.distBarrier(this.#group);
  }

  destroy(): void {
    if (this.#id !== null) native.distDestroy(this.#id);
    this.#id = null;
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * Averages the parameters' gradients across the ranks, in place: DDP's gradient average (a sum, then a division by
 * the world size), after each rank's backward on its share of the batch. A parameter that has a gradient on some
 * ranks but not on others takes zeros where it has none (DDP's unused parameters); one that has none on any rank
 * keeps none, so the optimiser skips it as a single process would.
 */
export function averageGradients(parameters: readonly Tensor[], group: ProcessGroup): void {
  if (parameters.length === 0) return;
  tidy(() => {
    const grads = parameters.map((p) => p.grad);
    const present = tensor(grads.map((g) => (g === null ? 0 : 1)), { dtype: "int32" });
    group.allReduce([present]);
    const anywhere = present.toArray() as number[];
    const reduced: Tensor[] = [];
    for (const [i, p] of parameters.entries()) {
      if (anywhere[i] === 0) continue;
      let g = grads[i] ?? null;
      if (g === null) {
        p.grad = zerosLike(p);
        g = p.grad!;
      }
      reduced.push(g);
    }
    group.allReduce(reduced, "mean");
  });
}

/**
 * Gives every rank rank `root`'s values of the tensors (parameters, buffers, EMA shadows), as DDP does when it is
 * made, so that every rank starts from the same weights however each initialised them.
 */
export function broadcastParameters(tensors: readonly Tensor[], group: ProcessGroup, root = 0): void {
  group.broadcast(tensors, root);
}
