/**
 * Prerequisites a test cannot make itself (the Python oracle in .venv, generated fixtures, free disk): missing on a
 * developer's machine they skip the test with the reason; in CI (CI=true), where the test command sets all of
 * them up, the test runs anyway and fails on what is missing, so a broken setup cannot turn part of the suite
 * into skips while the run stays green.
 */
export const inCI = process.env["CI"] === "true";

/** A test's skip reason outside CI; false (run, and fail if it really is missing) in CI. */
export function skipOutsideCI(reason: string | false): string | false {
  return inCI ? false : reason;
}
