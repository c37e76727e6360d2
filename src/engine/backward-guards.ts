/**
 * Checks that run before every backward pass (Tensor.backward, backward, grad), so that a backward that would
 * silently compute wrong gradients fails loudly instead. A layer above the engine registers one while it holds
 * work that only its own backward can finish: gradient checkpointing (models/blocks/checkpointing.ts) records
 * blocks whose parameters a plain `loss.backward()` cannot reach, and registers a check that names the right call.
 * That owner runs its own backward passes inside `withoutBackwardGuards`.
 */
const guards = new Set<() => string | undefined>();
let suspended = 0;

/** Registers a check (a message when a backward now would be wrong); returns the function that removes it. */
export function addBackwardGuard(check: () => string | undefined): () => void {
  guards.add(check);
  return () => void guards.delete(check);
}

/** Runs `fn` with the checks off: for the owner of the pending work, driving its own backward pass. */
export function withoutBackwardGuards<T>(fn: () => T): T {
  suspended += 1;
  try {
    return fn();
  } finally {
    suspended -= 1;
  }
}

/** Throws the first registered check's message, if any (called by the engine's backward entry points). */
export function checkBackwardGuards(): void {
  if (suspended > 0) return;
  for (const check of guards) {
    const message = check();
    if (message !== undefined) throw new Error(message);
  }
}
