/**
 * The evaluation's prompts (HyperDreamBooth §5: "a [V] face" in styles, scenes and accessories): each with "[V]" in the
 * identifier's place, and the style the prompt-fidelity network must then see (the CLIP-T role). A prompt of a file is
 * one of the world's: "a [V] face" (a photo) or "a [V] face <style phrase>" for one style of the catalogue. Anything
 * else is refused by line, because the fidelity network can only judge the styles it was trained on: a prompt it
 * cannot judge would count as a failure of every method alike and hide the differences the table is for.
 */
import { readFileSync } from "node:fs";
import { identifierPrompt } from "../../miniworld/captions.js";
import { STYLE_NAMES, type StyleName } from "../../miniworld/styles.js";
import { PHOTO_LABEL } from "../fidelity-network.js";

/** Where the identifier goes in a prompt. */
export const IDENTIFIER_PLACE = "[V]";

export interface EvalPrompt {
  /** The prompt with "[V]" for the identifier ("a [V] face as a pencil sketch"). */
  text: string;
  /** The styles it asks for ([] = a photo): what the world renders as its ceiling. */
  styles: StyleName[];
  /** The style label the prompt-fidelity network must name ("photo" for none). */
  expectedStyle: string;
}

/** Every prompt the world can judge, by its text: "a [V] face", then one per style. */
function knownPrompts(): Map<string, EvalPrompt> {
  const known = new Map<string, EvalPrompt>();
  known.set(identifierPrompt(IDENTIFIER_PLACE, []), { text: identifierPrompt(IDENTIFIER_PLACE, []), styles: [], expectedStyle: PHOTO_LABEL });
  for (const style of STYLE_NAMES) {
    const text = identifierPrompt(IDENTIFIER_PLACE, [style]);
    known.set(text, { text, styles: [style], expectedStyle: style });
  }
  return known;
}

/** The prompt of a list of styles (at most one; [] = "a [V] face"), as the studies write them. */
export function promptOfStyles(styles: readonly StyleName[]): EvalPrompt {
  if (styles.length > 1) throw new Error(`an evaluation prompt asks for at most one style (the fidelity network names one), got ${styles.join(" + ")}`);
  return parsePrompt(identifierPrompt(IDENTIFIER_PLACE, styles), "prompt");
}

/** One prompt's text (whitespace collapsed) → the prompt; `where` names it in errors ("prompts.txt:3"). */
export function parsePrompt(line: string, where: string): EvalPrompt {
  const text = line.trim().replace(/\s+/g, " ");
  if (!text.includes(IDENTIFIER_PLACE)) throw new Error(`${where}: '${text}' has no ${IDENTIFIER_PLACE} (where the person's identifier goes), e.g. "a [V] face as a pencil sketch"`);
  const prompt = knownPrompts().get(text);
  if (prompt === undefined) {
    throw new Error(`${where}: '${text}' is not a prompt of the world's styles, which is all the prompt-fidelity network can judge: ` +
      `write "a [V] face" or "a [V] face <style phrase>", e.g. "${identifierPrompt(IDENTIFIER_PLACE, ["pencil-sketch"])}"`);
  }
  return { ...prompt, styles: [...prompt.styles] };
}

/** A prompt file: one prompt per line; blank lines and lines starting with "#" are skipped. */
export function readPromptFile(file: string): EvalPrompt[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `prompt file ${file} does not exist` : `cannot read prompt file ${file}: ${(error as Error).message}`);
  }
  const prompts: EvalPrompt[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const prompt = parsePrompt(line, `${file}:${i + 1}`);
    if (prompts.some((p) => p.text === prompt.text)) throw new Error(`${file}:${i + 1}: '${prompt.text}' is listed twice`);
    prompts.push(prompt);
  }
  if (prompts.length === 0) throw new Error(`prompt file ${file} lists no prompt (one per line, with ${IDENTIFIER_PLACE})`);
  return prompts;
}

/** The prompt with the identifier in place ("a sks face as a pencil sketch"). */
export function withIdentifier(prompt: EvalPrompt, identifier: string): string {
  return prompt.text.replaceAll(IDENTIFIER_PLACE, identifier);
}
