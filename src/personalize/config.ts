/**
 * The settings of personalisation (HyperDreamBooth §4.3, src/personalize/personalize.ts), one schema for the library,
 * the CLI and the evaluation's ablations (§5: No Hyper, Only Hyper, k = 1 are these settings, not other code).
 */
import { z } from "zod";
import { nonNegativeInt, parseWithSchema, positiveInt } from "../util/schema.js";

export const personalizeSettingsSchema = z.object({
  /** Rank-relaxed fine-tuning steps on the photo(s); 0 = "Only Hyper" (the prediction alone). Paper: 40. */
  steps: nonNegativeInt().default(40),
  /** Rank r of the fresh LoRA trained on top of the prediction (r > 1 is the "relaxation"; 1 is allowed for ablations). */
  rank: positiveInt().default(4),
  /** AdamW's learning rate of the rank-relaxed LoRA (constant). */
  learningRate: z.number({ error: "> 0" }).positive().default(1e-3),
  /** Use the HyperNetwork's prediction (false = "No Hyper": the LoRA is trained from zero on the base model). */
  hyper: z.boolean().default(true),
  /** The HyperNetwork's refinement rounds k (default: the network's s). */
  rounds: positiveInt().optional(),
  /** Seed of the LoRA's initialisation and of the fine-tuning's draws (noise, timesteps). */
  seed: nonNegativeInt().default(0),
  /** The prompt of the fine-tuning, with "[V]" for the identifier (the HyperNetwork's). */
  prompt: z.string({ error: "a prompt containing \"[V]\"" }).includes("[V]").default("a [V] face"),
  /** Random horizontal flips of the photo during fine-tuning (probability). */
  randomFlip: z.number().min(0).max(1).default(0),
});

export type PersonalizeSettings = z.output<typeof personalizeSettingsSchema>;
export type PersonalizeSettingsInput = z.input<typeof personalizeSettingsSchema>;

export function personalizeSettings(input: PersonalizeSettingsInput = {}, source = "personalize settings"): PersonalizeSettings {
  const settings = parseWithSchema(personalizeSettingsSchema, input, { source });
  if (!settings.hyper && settings.steps === 0) throw new Error(`${source}: without the HyperNetwork (No Hyper) and with 0 fine-tuning steps there is nothing to personalise`);
  return settings;
}
