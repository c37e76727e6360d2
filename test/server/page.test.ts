// The page of `hdb serve` in a real browser (issue 19): Debian's Chromium, headless, driven by playwright-core. A
// person's path through it: drop the sample face on the page, watch the steps and ETA, wait for the model, generate
// two style presets, download the LoRA; the reference photo is shown beside the results, and the page fits a phone
// screen. Screenshots for a person to look at: reports/server/page.png (desktop) and reports/server/page-phone.png.
// Also: web/dist is the build of web/src as it is.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { skipOutsideCI } from "../prerequisites.js";
import { repoRoot, safetensorsHeader, sampleFace, startServe, temporaryDir } from "./helpers.js";

const CHROMIUM = process.env["HDB_CHROMIUM"] ?? "/usr/bin/chromium";
const noBrowser = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set HDB_CHROMIUM)`;

test("web/dist is the build of web/src (npm run build:web was run after the last change)", () => {
  const out = mkdtempSync(path.join(tmpdir(), "hdb-web-"));
  try {
    const build = spawnSync(process.execPath, ["--input-type=module", "-e", `
      const { build } = await import("esbuild");
      await build({ entryPoints: [${JSON.stringify(path.join(repoRoot, "web", "src", "main.tsx"))}], bundle: true, minify: true, format: "esm",
        target: ["es2020", "safari14"], jsx: "automatic", jsxImportSource: "preact", outfile: ${JSON.stringify(path.join(out, "app.js"))}, legalComments: "none", logLevel: "error" });
    `], { cwd: repoRoot, encoding: "utf8", input: "" });
    assert.equal(build.status, 0, build.stderr);
    assert.ok(readFileSync(path.join(out, "app.js")).equals(readFileSync(path.join(repoRoot, "web", "dist", "app.js"))), "web/dist/app.js is stale: run npm run build:web");
    for (const [from, to] of [["style.css", "app.css"], ["index.html", "index.html"]]) {
      assert.ok(readFileSync(path.join(repoRoot, "web", "src", from!)).equals(readFileSync(path.join(repoRoot, "web", "dist", to!))), `web/dist/${to} is stale`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("in Chromium: upload a face, watch it personalise, generate two styles, download the LoRA; screenshots", { timeout: 240_000, skip: skipOutsideCI(noBrowser) }, async () => {
  const data = temporaryDir("serve-page");
  const server = await startServe(data);
  const downloads = temporaryDir("serve-page-downloads");
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    const response = await page.goto(server.url);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()["content-security-policy"] ?? "", /script-src 'self'/);
    await page.getByText("Drop a face photo here").waitFor();

    // The file input behind the drop zone offers the camera on a phone; here the photo is dropped on the zone.
    const input = page.locator('input[type="file"]');
    assert.equal(await input.getAttribute("capture"), "user");
    assert.match((await input.getAttribute("accept")) ?? "", /image\/jpeg/);
    const base64 = readFileSync(sampleFace).toString("base64");
    await page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob("${base64}"), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], "face.png", { type: "image/png" }));
      document.querySelector(".drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    })()`);
    await page.getByRole("img", { name: "the photo to personalise from" }).waitFor();
    // The standard 40 steps: the progress shows the step and an ETA while it runs.
    await page.locator('select[name="steps"]').selectOption("40");
    await page.getByRole("button", { name: "Personalise", exact: true }).click();
    await page.getByText(/step \d+\/40 · ETA \d+s/).waitFor({ timeout: 60_000 });
    await page.locator('.upload .progress[data-status="succeeded"]').waitFor({ timeout: 120_000 });

    // The model: reference photo, presets, downloads. Two styles at once.
    await page.getByRole("img", { name: "reference photo" }).waitFor();
    await page.getByRole("button", { name: "as a pencil sketch" }).click();
    await page.getByRole("button", { name: "as an oil painting" }).click();
    await page.getByRole("button", { name: "Generate 2 images" }).click();
    await page.locator(".gallery .result img").nth(1).waitFor({ timeout: 120_000 });
    type Img = { complete: boolean; naturalWidth: number };
    const loaded = await page.locator(".gallery .result img").evaluateAll((images) => images.map((i) => (i as unknown as Img).complete && (i as unknown as Img).naturalWidth));
    assert.deepEqual(loaded, [64, 64], "both images loaded");
    const captions = await page.locator(".gallery .result figcaption").allTextContents();
    assert.deepEqual(captions.sort(), ["a sks face as a pencil sketch", "a sks face as an oil painting"]);
    // The reference photo loaded beside the results.
    assert.equal(await page.getByRole("img", { name: "reference photo" }).evaluate((i) => (i as unknown as Img).naturalWidth), 64);

    // Download the LoRA (kohya layout, the one A1111/ComfyUI read).
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /LoRA \(kohya\)/ }).click()]);
    const saved = path.join(downloads, download.suggestedFilename());
    await download.saveAs(saved);
    assert.match(download.suggestedFilename(), /\.lora-kohya\.safetensors$/);
    const keys = Object.keys(safetensorsHeader(readFileSync(saved)));
    assert.ok(keys.some((k) => k.endsWith(".lora_down.weight")));

    mkdirSync(path.join(repoRoot, "reports", "server"), { recursive: true });
    await page.screenshot({ path: path.join(repoRoot, "reports", "server", "page.png"), fullPage: true });

    // A phone: one column, nothing wider than the screen, the same controls reachable.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone screen`);
    await page.getByRole("button", { name: "Personalise", exact: true }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(repoRoot, "reports", "server", "page-phone.png"), fullPage: true });
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await browser?.close();
    assert.equal(await server.stop(), 0, server.stderr());
    rmSync(data, { recursive: true, force: true });
    rmSync(downloads, { recursive: true, force: true });
  }
});
