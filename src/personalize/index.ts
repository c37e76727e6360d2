/** Personalisation (HyperDreamBooth §4.3): one photo → HyperNetwork prediction → rank-relaxed fast fine-tuning. */
export { personalizeSettings, personalizeSettingsSchema, type PersonalizeSettings, type PersonalizeSettingsInput } from "./config.js";
export { personalize, Personalizer, type Personalization, type PersonalizationTimes, type PersonalizerOptions } from "./personalize.js";
