// The page's client of the `hdb serve` API (src/server/app.ts): fetch with the token when the server asks for one,
// and job streams as server-sent events (EventSource cannot send headers, so the token goes in the query).

export interface Progress {
  label: string;
  done: number;
  total: number;
  fraction: number;
  etaSeconds: number | null;
}

export interface Job {
  id: string;
  kind: "personalize" | "generate";
  status: "queued" | "running" | "succeeded" | "failed" | "cancelled";
  position: number | null;
  progress: Progress | null;
  error: string | null;
  createdAt: string;
  params: Record<string, unknown>;
  result: Record<string, unknown> | null;
}

export interface Model {
  id: string;
  name: string;
  jobId: string;
  createdAt: string;
  files: Record<"lidb" | "lora-diffusers" | "lora-kohya", { url: string; bytes: number | null }>;
  photo: string;
  summary: { identifier?: string; times?: Record<string, number> };
}

export interface Style {
  name: string;
  kind: string;
  phrase: string;
}

const TOKEN_KEY = "hdb-token";

/** The API token: ?token= in the page's address (kept for the session), or one typed in earlier. */
export function token(): string | null {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) sessionStorage.setItem(TOKEN_KEY, fromUrl);
  return fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** A URL of the API with the token in its query (for <img>, download links and EventSource). */
export function authUrl(path: string): string {
  const t = token();
  return t ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}` : path;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const t = token();
  const headers = new Headers(init.headers);
  if (t) headers.set("authorization", `Bearer ${t}`);
  const response = await fetch(path, { ...init, headers });
  const body = (await response.json().catch(() => null)) as (T & { error?: string }) | null;
  if (!response.ok) throw new ApiError(response.status, body?.error ?? `${response.status} ${response.statusText}`);
  return body as T;
}

export const api = {
  models: () => call<Model[]>("/models"),
  jobs: () => call<Job[]>("/jobs?limit=200"),
  styles: () => call<Style[]>("/styles"),
  deleteModel: (id: string) => call<unknown>(`/models/${id}`, { method: "DELETE" }),
  personalize: (photo: File, fields: Record<string, string>) => {
    const form = new FormData();
    form.append("photo", photo, photo.name || "photo");
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    return call<Job>("/personalizations", { method: "POST", body: form });
  },
  generate: (body: { model: string; prompt: string; seed: number; steps: number; images: number }) =>
    call<Job>("/generations", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
};

/** Follows a job's events until it has finished; `onUpdate` sees every state. Returns a function that stops following. */
export function follow(id: string, onUpdate: (job: Job) => void): () => void {
  const source = new EventSource(authUrl(`/jobs/${id}/events`));
  source.addEventListener("job", (event) => {
    const job = JSON.parse((event as MessageEvent<string>).data) as Job;
    onUpdate(job);
    if (job.status !== "queued" && job.status !== "running") source.close();
  });
  return () => source.close();
}

/** "12s", "3m05s" (the CLI's format). */
export function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "…";
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
