// Hostile and malformed requests against `hdb serve` (issue 19): over 1,000 of them, eight at a time, in families —
// oversized uploads, truncated multipart, wrong content types, path-traversal ids, bad JSON, huge prompts,
// decompression bombs and other image attacks, multipart abuse, broken HTTP, unknown routes and queries. Every one
// must get a 4xx answer (never a 5xx, never a dropped connection); afterwards the server is alive, accepted no job,
// left no file, and still serves a normal personalisation. The counts per family and status go to
// reports/server/fuzz.json.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { commitOf } from "../../src/util/provenance.js";
import { mulberry32 } from "../../src/util/random.js";
import { json, personalize, repoRoot, safetensorsHeader, sampleFace, startServe, temporaryDir, waitForJob, type Job } from "./helpers.js";

interface Request {
  family: string;
  /** The whole request as bytes (request line, headers, body). */
  bytes: Buffer;
}

function request(method: string, target: string, headers: Record<string, string>, body: Buffer | string = Buffer.alloc(0), options: { contentLength?: number } = {}): Buffer {
  const data = typeof body === "string" ? Buffer.from(body) : body;
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (method !== "GET" || data.length > 0) lines.push(`Content-Length: ${options.contentLength ?? data.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), data]);
}

interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Buffer | string;
}

function multipart(parts: Part[], boundary = "----hdbfuzz7MA4YWxkTrZu0gW", close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? "" : `; filename="${part.filename}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ""}\r\n`, "latin1"));
    chunks.push(typeof part.data === "string" ? Buffer.from(part.data) : part.data, Buffer.from("\r\n"));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const MULTIPART = { "Content-Type": "multipart/form-data; boundary=----hdbfuzz7MA4YWxkTrZu0gW" };
const JSON_TYPE = { "Content-Type": "application/json" };

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A valid PNG whose header claims width × height (its pixels stay the few it has): a bomb by declaration. */
function lyingPng(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Sends raw bytes, reads the answer to its end: the status (null: no HTTP answer) and the body's first bytes. */
function send(port: number, bytes: Buffer): Promise<{ status: number | null; text: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : null, text: text.slice(0, 400) });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, 20_000);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", finish);
    socket.on("close", finish);
    // The server may answer (413, 400) and close before it has read everything: that is an answer, not a failure.
    socket.on("error", finish);
    // No half-close after the request (as browsers and curl do not): the server closes (Connection: close) once it answered.
    socket.write(bytes);
  });
}

async function hostileRequests(): Promise<Request[]> {
  const rand = mulberry32(19);  // seeded: every run sends the same requests
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const face = readFileSync(sampleFace);
  const out: Request[] = [];
  const add = (family: string, bytes: Buffer): void => void out.push({ family, bytes });
  const photo = (data: Buffer, extra: Part[] = [], filename = "face.png", type = "image/png"): Buffer =>
    multipart([{ name: "photo", filename, type, data }, ...extra]);

  // Oversized uploads (the server takes at most 256 KiB a photo here) and bodies over the JSON limit.
  for (let i = 0; i < 60; i++) {
    const size = 262_145 + Math.floor(rand() * 800_000);
    const data = Buffer.concat([face.subarray(0, 8), Buffer.alloc(size, i)]);
    add("oversized", request("POST", "/personalizations", MULTIPART, photo(data)));
  }
  // Truncated multipart: a good upload cut anywhere before the photo's last byte (Content-Length telling the truth).
  const good = photo(face, [{ name: "steps", data: "5" }]);
  const photoEnd = good.indexOf(face) + face.length;
  for (let i = 0; i < 150; i++) {
    const cut = 1 + Math.floor(rand() * (photoEnd - 2));
    add("truncated multipart", request("POST", "/personalizations", MULTIPART, good.subarray(0, cut)));
  }
  // Wrong content types for each route.
  const wrongTypes: [string, Record<string, string>, Buffer | string][] = [
    ["/personalizations", JSON_TYPE, JSON.stringify({ photo: face.toString("base64") })],
    ["/personalizations", { "Content-Type": "text/plain" }, "photo=face"],
    ["/personalizations", { "Content-Type": "application/x-www-form-urlencoded" }, "photo=face&steps=5"],
    ["/personalizations", { "Content-Type": "image/png" }, face],
    ["/personalizations", { "Content-Type": "application/octet-stream" }, face],
    ["/personalizations", {}, face],
    ["/personalizations", { "Content-Type": "multipart/form-data" }, good],
    ["/personalizations", { "Content-Type": "multipart/mixed; boundary=----hdbfuzz7MA4YWxkTrZu0gW" }, good],
    ["/generations", MULTIPART, multipart([{ name: "prompt", data: "a face" }])],
    ["/generations", { "Content-Type": "text/plain" }, "a face"],
    ["/generations", { "Content-Type": "application/xml" }, "<prompt>a face</prompt>"],
    ["/generations", { "Content-Type": "application/json; charset=utf-16" }, JSON.stringify({ prompt: "a face", steps: "x" })],
    ["/generations", {}, JSON.stringify({ prompt: "a face" })],
  ];
  for (let i = 0; i < 78; i++) {
    const [route, headers, body] = wrongTypes[i % wrongTypes.length]!;
    add("wrong content type", request("POST", route, headers, body));
  }
  // Path-traversal and malformed ids on every route that takes one.
  const ids = [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fhdb.sqlite", "..\\..\\hdb.sqlite", "....//....//etc", "%00", "abc%00def",
    "0".repeat(31), "0".repeat(33), "G".repeat(32), "A".repeat(32), "0".repeat(10_000), "%C0%AE%C0%AE%2F", "..", ".", "%252e%252e%252f", "ＡＢＣ",
    "00000000000000000000000000000000/../../hdb.sqlite", "00000000000000000000000000000000%2F..%2F..%2Fhdb.sqlite", "~root", "$(id)", "'; DROP TABLE jobs; --",
  ];
  const routes = (id: string): [string, string][] => [
    ["GET", `/jobs/${id}`], ["DELETE", `/jobs/${id}`], ["GET", `/jobs/${id}/events`], ["GET", `/jobs/${id}/images/0`],
    ["GET", `/models/${id}`], ["DELETE", `/models/${id}`], ["GET", `/models/${id}/lidb`], ["GET", `/models/${id}/lora-kohya`],
  ];
  for (const id of ids) for (const [method, target] of routes(id)) add("path traversal", request(method, target, {}));
  const validFormat = "0123456789abcdef0123456789abcdef";
  for (const file of ["../hdb.sqlite", "..%2Fhdb.sqlite", "photo/../../hdb.sqlite", "LIDB", "lidb.safetensors", "reference.png", "%00", "lidb%00"]) {
    add("path traversal", request("GET", `/models/${validFormat}/${file}`, {}));
  }
  for (const index of ["-1", "4", "../0", "1e3", "0x1", "%00", "999999999999999999999"]) add("path traversal", request("GET", `/jobs/${validFormat}/images/${index}`, {}));
  // Bad JSON: cut, corrupted, nested, polluting, wrong types and ranges.
  const valid = JSON.stringify({ prompt: "a face as a pencil sketch", seed: 1, steps: 5, images: 1 });
  for (let i = 0; i < 60; i++) add("bad json", request("POST", "/generations", JSON_TYPE, valid.slice(0, Math.floor(rand() * (valid.length - 1)))));
  for (let i = 0; i < 30; i++) {
    const bytes = Buffer.from(valid);
    for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = pick([0x00, 0x7b, 0x22, 0xff, 0x5c, 0x2c]);
    // Keep only corruptions that are not valid JSON any more (a flipped byte inside the prompt could still parse).
    let parses = true;
    try {
      JSON.parse(bytes.toString("utf8"));
    } catch {
      parses = false;
    }
    add("bad json", request("POST", "/generations", JSON_TYPE, parses ? Buffer.concat([bytes, Buffer.from("}")]) : bytes));
  }
  const badBodies: unknown[] = [
    null, [], 42, "a face", true, {}, { prompt: 123 }, { prompt: null }, { prompt: ["a"] }, { prompt: { text: "a" } }, { prompt: "" },
    { prompt: "a", steps: 0 }, { prompt: "a", steps: 101 }, { prompt: "a", steps: "x" }, { prompt: "a", steps: 1.5 }, { prompt: "a", steps: -1 },
    { prompt: "a", seed: -1 }, { prompt: "a", seed: 2 ** 40 }, { prompt: "a", seed: "NaN" }, { prompt: "a", images: 5 }, { prompt: "a", images: 0 },
    { prompt: "a", guidance: -1 }, { prompt: "a", guidance: 1e9 }, { prompt: "a", weight: 3 }, { prompt: "a", model: "../base" }, { prompt: "a", model: "BASE" },
    { prompt: "a", model: "" }, { prompt: "a", model: 7 }, { prompt: "a", extra: 1 }, { prompt: "a", negativePrompt: "n".repeat(501) },
    { prompt: "a", constructor: { prototype: { admin: true } } },
  ];
  for (const body of badBodies) add("bad json", request("POST", "/generations", JSON_TYPE, JSON.stringify(body)));
  add("bad json", request("POST", "/generations", JSON_TYPE, '{"prompt":"a","__proto__":{"polluted":1}}'));
  add("bad json", request("POST", "/generations", JSON_TYPE, '{"prompt":"a","constructor":{"prototype":{"polluted":1}}}'));
  add("bad json", request("POST", "/generations", JSON_TYPE, `${"[".repeat(5000)}${"]".repeat(5000)}`));
  add("bad json", request("POST", "/generations", JSON_TYPE, `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`));
  add("bad json", request("POST", "/generations", JSON_TYPE, Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0xfe, 0x00])));
  for (let i = 0; i < 60; i++) add("bad json", request("POST", "/generations", JSON_TYPE, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)))));
  // Huge prompts: over the 500-character field limit, and over the 64 KiB body limit.
  for (let i = 0; i < 40; i++) {
    const length = i < 20 ? 501 + Math.floor(rand() * 60_000) : 70_000 + Math.floor(rand() * 2_000_000);
    add("huge prompt", request("POST", "/generations", JSON_TYPE, JSON.stringify({ prompt: "a sks face ".repeat(Math.ceil(length / 11)).slice(0, length) })));
  }
  // Decompression bombs and other image attacks (the server allows 4 megapixels here).
  const bombPng = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: "#000000" } }).png({ compressionLevel: 9 }).toBuffer();
  const bombJpeg = await sharp({ create: { width: 2100, height: 2100, channels: 3, background: "#808080" } }).jpeg({ quality: 10 }).toBuffer();
  const bombWebp = await sharp({ create: { width: 2500, height: 2000, channels: 3, background: "#ffffff" } }).webp({ quality: 10 }).toBuffer();
  const tiny = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#ff0000" } }).png().toBuffer();
  const gif = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
  const svg = Buffer.from('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><text>&x;</text></svg>');
  const images: Buffer[] = [
    bombPng, bombJpeg, bombWebp, lyingPng(face, 100_000, 100_000), lyingPng(face, 2_000_000_000, 2), lyingPng(face, 0, 64), lyingPng(face, 1000, 1000),
    tiny, gif, svg, Buffer.from("BM"), Buffer.from("II*\0"), Buffer.alloc(0), face.subarray(0, 8), face.subarray(0, 40), face.subarray(0, face.length >> 1),
    Buffer.concat([face.subarray(0, 8), Buffer.from("<html><script>alert(1)</script></html>")]), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), Buffer.from("RIFF\0\0\0\0WEBPVP8 "),
  ];
  for (let i = 0; i < 95; i++) {
    const image = images[i % images.length]!;
    const filename = pick(["face.png", "../../../etc/passwd", "..\\..\\hdb.sqlite", "a.svg", "%00.png", "x".repeat(200)]);
    add("image attack", request("POST", "/personalizations", MULTIPART, photo(image, [], filename, pick(["image/png", "image/jpeg", "image/svg+xml", "text/html"]))));
  }
  // Multipart abuse: too many photos, fields, sizes; wrong field kinds; broken boundaries.
  const abuse: Buffer[] = [
    multipart([1, 2, 3].map(() => ({ name: "photo", filename: "f.png", type: "image/png", data: face }))),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, ...Array.from({ length: 20 }, (_, k) => ({ name: `f${k}`, data: "1" }))]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "name", data: "n".repeat(5000) }]),
    multipart([{ name: "photo", data: "not a file" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "unknown", data: "1" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "steps", data: "-1" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "steps", data: "401" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "steps", data: "abc" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "steps", data: "1.5" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "rank", data: "0" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "learningRate", data: "0" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "steps", filename: "s.png", type: "image/png", data: face }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "__proto__", data: "x" }]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }, { name: "x".repeat(200), data: "x" }]),
    multipart([{ name: "steps", data: "5" }]),
    multipart([]),
    multipart([{ name: "photo", filename: "f.png", type: "image/png", data: face }], "other-boundary"),
    Buffer.from("this is not multipart at all"),
    Buffer.concat([Buffer.from("--" + "----hdbfuzz7MA4YWxkTrZu0gW\r\n"), Buffer.alloc(40_000, 0x41), Buffer.from("\r\n\r\n")]),
  ];
  for (let i = 0; i < 95; i++) add("multipart abuse", request("POST", "/personalizations", MULTIPART, abuse[i % abuse.length]!));
  // Broken HTTP: the parser's own 4xx answers.
  const broken: Buffer[] = [
    Buffer.from("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n"),
    Buffer.from("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
    Buffer.from("POST /generations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\nConnection: close\r\n\r\n`),
    Buffer.from(`GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    Buffer.from("GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\nConnection: close\r\n\r\n"),
    Buffer.from("GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n"),
    Buffer.from("G\0T /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    Buffer.from("GET /he alth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    Buffer.from("GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"),
  ];
  for (let i = 0; i < 60; i++) add("broken http", broken[i % broken.length]!);
  // Unknown routes, wrong methods, bad queries.
  const misc: [string, string][] = [
    ["GET", "/index.html"], ["GET", "/app/../../package.json"], ["GET", "/app/%2e%2e/%2e%2e/package.json"], ["GET", "/app/..%2f..%2fhdb.sqlite"], ["GET", "/app/"], ["GET", "/admin"], ["GET", "/hdb.sqlite"], ["GET", "/../hdb.sqlite"], ["GET", "/%2e%2e/hdb.sqlite"], ["GET", "/models/../hdb.sqlite"],
    ["PUT", "/jobs"], ["PATCH", "/models"], ["DELETE", "/jobs"], ["POST", "/health"], ["POST", "/jobs"], ["GET", "/personalizations"], ["TRACE", "/health"],
    ["OPTIONS", "/generations"], ["GET", "/jobs?limit=0"], ["GET", "/jobs?limit=-5"], ["GET", "/jobs?limit=abc"], ["GET", "/jobs?limit=100000"], ["GET", "/jobs?evil=1"],
    ["GET", "/models?limit=1e99"], ["GET", "/models?limit[]=1&limit[]=2"], ["GET", "/openapi.json/../hdb.sqlite"], ["GET", "/jobs/%ZZ"], ["GET", "/jobs?limit=%"],
  ];
  for (let i = 0; i < 120; i++) {
    const [method, target] = misc[i % misc.length]!;
    add("routes and queries", request(method, target, {}));
  }
  return out;
}

test("≥ 1,000 hostile requests get 4xx answers only; nothing is accepted or left behind; a normal personalisation still works", { timeout: 240_000 }, async () => {
  const data = temporaryDir("serve-fuzz");
  const server = await startServe(data, ["--max-upload-mb", "0.25", "--max-pixels", "4000000", "--max-photos", "2", "--rate-limit", "100000"]);
  const port = Number(new URL(server.url).port);
  try {
    const requests = await hostileRequests();
    assert.ok(requests.length >= 1000, `${requests.length} requests`);
    const counts: Record<string, Record<string, number>> = {};
    const failures: string[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < requests.length) {
        const r = requests[next++]!;
        const { status, text } = await send(port, r.bytes);
        const key = status === null ? "no answer" : String(status);
        (counts[r.family] ??= {})[key] = (counts[r.family]![key] ?? 0) + 1;
        if (status === null || status < 400 || status >= 500) failures.push(`${r.family}: ${key}: ${r.bytes.subarray(0, 120).toString("latin1").split("\r\n")[0]} → ${text.split("\r\n\r\n")[1]?.slice(0, 160) ?? text.slice(0, 160)}`);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    const total = Object.values(counts).flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
    mkdirSync(path.join(repoRoot, "reports", "server"), { recursive: true });
    writeJsonAtomic(path.join(repoRoot, "reports", "server", "fuzz.json"), {
      what: "hostile requests against hdb serve (test/server/fuzz.test.ts): the answers per family and status", requests: total, seconds, failures: failures.length, counts,
      commit: commitOf(repoRoot), command: "node --test dist/test/server/fuzz.test.js",
    });
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} requests got no 4xx answer`);
    assert.equal(server.child.exitCode, null, "the server is still running");
    assert.ok(!/internal error|\n\s+at /.test(server.stderr()), `no internal error was logged: ${server.stderr().slice(0, 2000)}`);

    // Nothing accepted, nothing left: no job, no model, no input, staging or temporary file.
    assert.deepEqual((await json<Job[]>(`${server.url}/jobs`)).body, []);
    assert.deepEqual((await json<unknown[]>(`${server.url}/models`)).body, []);
    for (const sub of ["inputs", "staging", "models", "generations"]) assert.deepEqual(readdirSync(path.join(data, sub)), [], `${sub}/ is empty`);
    assert.deepEqual(readdirSync(data).sort(), ["generations", "hdb.sqlite", "hdb.sqlite-shm", "hdb.sqlite-wal", "inputs", "models", "staging"]);

    // And it still serves a normal personalisation.
    const job = await personalize(server.url, [sampleFace], { steps: "5" });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    const done = await waitForJob(server.url, job.body.id);
    assert.equal(done.status, "succeeded", done.error ?? "");
    const lora = await fetch(`${server.url}/models/${(done.result as { modelId: string }).modelId}/lora-kohya`);
    assert.equal(lora.status, 200);
    safetensorsHeader(new Uint8Array(await lora.arrayBuffer()));
  } finally {
    assert.equal(await server.stop(), 0, server.stderr());
    rmSync(data, { recursive: true, force: true });
  }
});
