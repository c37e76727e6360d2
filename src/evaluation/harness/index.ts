/** The evaluation harness (HyperDreamBooth §5): methods × identities × prompts × seeds, cached, scored, reported. */
export { blindPageHtml, groupOrder, seededShuffle } from "./blind-page.js";
export { ENTRY_FORMAT, EvalCache, METHOD_FILE_FORMAT, promptSlug, type CacheEntry, type EntryKey, type EntryScores, type MethodFileRecord } from "./cache.js";
export {
  contentDigest, hyperNetworkDigest, METHOD_NAMES, methodKey, methodRegistry, parseMethodList, usesHyperNetwork, WORLD_NUISANCE_OFFSET,
  type DreamBoothRecipe, type MethodName, type MethodRecipe, type MethodSettings, type MethodSpec,
} from "./methods.js";
export { produceMethodFiles, type MethodFile } from "./production.js";
export { IDENTIFIER_PLACE, parsePrompt, promptOfStyles, readPromptFile, withIdentifier, type EvalPrompt } from "./prompts.js";
export { identityVersusTimePlot } from "./plot.js";
export { reportHtml } from "./report-html.js";
export { runEvaluation, type EvaluationOptions, type EvaluationRun } from "./run.js";
export { Scorer } from "./scoring.js";
export { formatSummary, RESULTS_FORMAT, summarise, summariseResults, type EvalResults, type MethodResult, type RunCounts, type Summary } from "./summary.js";
