// The page of `hdb serve`: upload a face (drag and drop, a file, or a phone's camera), watch it personalise (place in
// line, steps, ETA), pick style presets or write a prompt, see the results beside the reference photo, and download
// the LiDB file and the LoRA in both layouts. Preact; built into web/dist by web/build.mjs.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, authUrl, duration, follow, setToken, token, type Job, type Model, type Style } from "./api.js";

interface Generation {
  jobId: string;
  prompt: string;
  status: Job["status"];
  images: string[];
  progress: Job["progress"];
  position: number | null;
  error: string | null;
}

const PRESETS = ["pencil-sketch", "oil-painting", "watercolour", "pop-art", "comic", "pixel-art", "on-the-beach", "in-space", "wearing-a-red-hat", "as-a-statue"];

function statusLine(job: Pick<Job, "status" | "position" | "progress" | "error">): string {
  if (job.status === "queued") return job.position && job.position > 0 ? `waiting — #${job.position} in line` : "waiting";
  if (job.status === "running") {
    const p = job.progress;
    return p ? `${p.label}: step ${p.done}/${p.total} · ETA ${duration(p.etaSeconds)}` : "starting…";
  }
  if (job.status === "failed") return `failed: ${job.error ?? "unknown error"}`;
  return job.status === "succeeded" ? "done" : job.status;
}

function ProgressBar({ job }: { job: Pick<Job, "status" | "position" | "progress" | "error"> }) {
  const fraction = job.status === "succeeded" ? 1 : job.progress?.fraction ?? 0;
  return (
    <div class="progress" data-status={job.status}>
      <div class="bar"><div class="fill" style={{ width: `${Math.round(fraction * 100)}%` }} /></div>
      <div class="status" role="status" aria-live="polite">{statusLine(job)}</div>
    </div>
  );
}

function Upload({ onModel }: { onModel: (modelId: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [steps, setSteps] = useState("40");
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const choose = (chosen: File | undefined) => {
    if (!chosen) return;
    setFile(chosen);
    setError(null);
    setPreview((old) => {
      if (old) URL.revokeObjectURL(old);
      return URL.createObjectURL(chosen);
    });
  };
  const start = async () => {
    if (!file) return;
    setError(null);
    try {
      const accepted = await api.personalize(file, { steps, ...(name ? { name } : {}) });
      setJob(accepted);
      follow(accepted.id, (update) => {
        setJob(update);
        if (update.status === "succeeded") onModel((update.result as { modelId: string }).modelId);
      });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const busy = job !== null && (job.status === "queued" || job.status === "running");
  return (
    <section class="card upload">
      <h2>1 · Your face</h2>
      <label
        class={`drop${over ? " over" : ""}`}
        onDragOver={(e) => { e.preventDefault(); setOver(true); }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => { e.preventDefault(); setOver(false); choose(e.dataTransfer?.files[0]); }}
      >
        {preview ? <img class="preview" src={preview} alt="the photo to personalise from" /> : <span>Drop a face photo here, or tap to choose one or take a picture</span>}
        <input ref={input} type="file" name="photo" accept="image/png,image/jpeg,image/webp" capture="user" onChange={(e) => choose((e.target as HTMLInputElement).files?.[0])} />
      </label>
      <div class="row">
        <input type="text" placeholder="name (optional)" maxLength={80} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} aria-label="name" />
        <select value={steps} onChange={(e) => setSteps((e.target as HTMLSelectElement).value)} aria-label="fine-tuning steps" name="steps">
          <option value="0">prediction only</option>
          <option value="10">quick (10 steps)</option>
          <option value="40">standard (40 steps)</option>
          <option value="100">careful (100 steps)</option>
        </select>
        <button class="primary" disabled={!file || busy} onClick={() => void start()}>Personalise</button>
      </div>
      {job && <ProgressBar job={job} />}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

function Downloads({ model }: { model: Model }) {
  const size = (bytes: number | null) => (bytes === null ? "" : ` · ${Math.round(bytes / 1024)} KB`);
  return (
    <div class="downloads">
      <a class="button" href={authUrl(model.files.lidb.url)} download>LiDB file{size(model.files.lidb.bytes)}</a>
      <a class="button" href={authUrl(model.files["lora-diffusers"].url)} download>LoRA (diffusers){size(model.files["lora-diffusers"].bytes)}</a>
      <a class="button" href={authUrl(model.files["lora-kohya"].url)} download>LoRA (kohya){size(model.files["lora-kohya"].bytes)}</a>
    </div>
  );
}

function Studio({ model, styles, generations, onGenerate }: { model: Model; styles: Style[]; generations: Generation[]; onGenerate: (prompts: string[], seed: number) => Promise<void> }) {
  const identifier = model.summary.identifier ?? "sks";
  const presets = useMemo(() => PRESETS.map((n) => styles.find((s) => s.name === n)).filter((s): s is Style => s !== undefined), [styles]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [prompt, setPrompt] = useState("");
  const [seed, setSeed] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const toggle = (name: string) => setChosen((c) => (c.includes(name) ? c.filter((n) => n !== name) : [...c, name]));
  const prompts = [
    ...chosen.map((n) => `a ${identifier} face ${presets.find((s) => s.name === n)?.phrase ?? ""}`.trim()),
    ...(prompt.trim() ? [prompt.trim()] : []),
  ];
  const go = async () => {
    setError(null);
    try {
      await onGenerate(prompts, seed);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <section class="card studio">
      <h2>2 · Styles</h2>
      <div class="person">
        <figure class="reference">
          <img src={authUrl(model.photo)} alt="reference photo" />
          <figcaption>{model.name || "reference"} · “{identifier}”</figcaption>
        </figure>
        <div class="controls">
          <div class="chips" role="group" aria-label="style presets">
            {presets.map((s) => (
              <button key={s.name} class={`chip${chosen.includes(s.name) ? " on" : ""}`} aria-pressed={chosen.includes(s.name)} onClick={() => toggle(s.name)}>{s.phrase}</button>
            ))}
          </div>
          <input type="text" class="prompt" placeholder={`your own prompt, e.g. "a ${identifier} face wearing glasses"`} maxLength={500} value={prompt} onInput={(e) => setPrompt((e.target as HTMLInputElement).value)} aria-label="prompt" />
          <div class="row">
            <label class="seed">seed <input type="number" min={0} value={seed} onInput={(e) => setSeed(Number((e.target as HTMLInputElement).value) || 0)} /></label>
            <button class="primary" disabled={prompts.length === 0} onClick={() => void go()}>Generate {prompts.length > 1 ? `${prompts.length} images` : ""}</button>
          </div>
          {error && <p class="error" role="alert">{error}</p>}
          <Downloads model={model} />
        </div>
      </div>
      <div class="gallery" aria-label="gallery">
        {generations.map((g) => (
          <figure key={g.jobId} class="result" data-status={g.status}>
            {g.images.length > 0 ? g.images.map((src) => <img key={src} src={src} alt={g.prompt} />) : <ProgressBar job={g} />}
            <figcaption>{g.prompt}</figcaption>
          </figure>
        ))}
      </div>
    </section>
  );
}

function TokenGate({ onSet }: { onSet: () => void }) {
  const [value, setValue] = useState("");
  return (
    <section class="card">
      <h2>API token</h2>
      <p>This server asks for a token. Paste it here (it is kept for this browser session only).</p>
      <div class="row">
        <input type="password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} aria-label="token" />
        <button class="primary" onClick={() => { setToken(value); onSet(); }}>Use</button>
      </div>
    </section>
  );
}

function App() {
  const [models, setModels] = useState<Model[]>([]);
  const [styles, setStyles] = useState<Style[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [generations, setGenerations] = useState<Record<string, Generation[]>>({});
  const [needsToken, setNeedsToken] = useState(false);
  const [attempt, setAttempt] = useState(0);

  const refresh = useCallback(async (select?: string) => {
    try {
      const [list, jobs, styleList] = await Promise.all([api.models(), api.jobs(), api.styles()]);
      setNeedsToken(false);
      setModels(list);
      setStyles(styleList);
      const byModel: Record<string, Generation[]> = {};
      for (const job of jobs) {
        const modelId = job.params["modelId"];
        if (job.kind !== "generate" || typeof modelId !== "string" || job.status !== "succeeded") continue;
        const images = ((job.result?.["images"] as string[] | undefined) ?? []).map((_, i) => authUrl(`/jobs/${job.id}/images/${i}`));
        (byModel[modelId] ??= []).push({ jobId: job.id, prompt: String(job.params["prompt"]), status: job.status, images, progress: null, position: null, error: null });
      }
      setGenerations((current) => ({ ...byModel, ...Object.fromEntries(Object.entries(current).map(([k, v]) => [k, [...v.filter((g) => g.status !== "succeeded"), ...(byModel[k] ?? [])]])) }));
      setSelected((s) => select ?? s ?? list[0]?.id ?? null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setNeedsToken(true);
    }
  }, []);
  useEffect(() => void refresh(), [refresh, attempt]);

  const model = models.find((m) => m.id === selected) ?? null;
  const generate = async (prompts: string[], seed: number) => {
    if (!model) return;
    for (const prompt of prompts) {
      const job = await api.generate({ model: model.id, prompt, seed, steps: 25, images: 1 });
      const entry: Generation = { jobId: job.id, prompt, status: job.status, images: [], progress: null, position: job.position, error: null };
      setGenerations((g) => ({ ...g, [model.id]: [entry, ...(g[model.id] ?? [])] }));
      follow(job.id, (update) => {
        setGenerations((g) => ({
          ...g,
          [model.id]: (g[model.id] ?? []).map((x) => x.jobId !== job.id ? x : {
            ...x, status: update.status, progress: update.progress, position: update.position, error: update.error,
            images: update.status === "succeeded" ? ((update.result?.["images"] as string[] | undefined) ?? []).map((_, i) => authUrl(`/jobs/${job.id}/images/${i}`)) : [],
          }),
        }));
      });
    }
  };

  return (
    <main>
      <header>
        <h1>HyperDreamBooth</h1>
        <p>One face photo → a personalised model in seconds (HyperNetwork + rank-relaxed fine-tuning) → any style, and the LoRA to take away.</p>
      </header>
      {needsToken || (token() === null && needsToken) ? <TokenGate onSet={() => setAttempt((a) => a + 1)} /> : (
        <>
          <Upload onModel={(id) => void refresh(id)} />
          {models.length > 0 && (
            <nav class="models" aria-label="your models">
              {models.map((m) => (
                <button key={m.id} class={`model${m.id === selected ? " on" : ""}`} onClick={() => setSelected(m.id)} title={m.name || m.id}>
                  <img src={authUrl(m.photo)} alt="" />
                  <span>{m.name || new Date(m.createdAt).toLocaleTimeString()}</span>
                </button>
              ))}
            </nav>
          )}
          {model && <Studio model={model} styles={styles} generations={generations[model.id] ?? []} onGenerate={generate} />}
        </>
      )}
      <footer><a href="/openapi.json">API (OpenAPI)</a></footer>
    </main>
  );
}

render(<App />, document.getElementById("app")!);
