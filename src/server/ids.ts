/**
 * Opaque, path-safe ids for jobs and models: 128 random bits as 32 lowercase hex digits. Nothing about a job (its
 * order, its owner, its time) can be read from or guessed at in its id, and an id is a safe file name everywhere
 * (no separators, dots or case folding); `isId` is the one check every route and every path join relies on.
 */
import { randomBytes } from "node:crypto";

/** An id: 32 lowercase hex digits. */
export const ID_PATTERN = "^[0-9a-f]{32}$";
const ID = new RegExp(ID_PATTERN);

export function newId(): string {
  return randomBytes(16).toString("hex");
}

export function isId(text: unknown): text is string {
  return typeof text === "string" && ID.test(text);
}

/** The id itself, or an error naming what was given instead (for ids read back from storage or from a job). */
export function checkId(text: unknown, what: string): string {
  if (!isId(text)) throw new Error(`${what}: not an id (32 hex digits): ${JSON.stringify(text)?.slice(0, 80)}`);
  return text;
}
