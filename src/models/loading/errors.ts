/**
 * The one error type of checkpoint loading: a missing or malformed folder, file, config or weight. Messages
 * name the folder or file, what was looked for and what was found, so a user can fix the checkout by hand.
 */
export class ModelLoadingError extends Error {
  override name = "ModelLoadingError";
}
