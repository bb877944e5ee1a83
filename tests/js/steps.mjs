// One step of the real @fal-ai/client against this server, configured as the README says:
//   fal.config({credentials, proxyUrl: {url: "<server>/fal/proxy", when: "always"}})
// Usage: node steps.mjs <step>; env FAL_JS_DIR (where `npm install @fal-ai/client` ran),
// STUDIO_URL, FAL_KEY (empty: no credentials), INPUT_PNG (a PNG file), WEBHOOK_URL (webhook step),
// NODE_EXTRA_CA_CERTS (the test CA). Prints one JSON line: {"ok": <value>} or {"error": {...}}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.FAL_JS_DIR + "/");
const { fal, ValidationError, ApiError } = require("@fal-ai/client");

const proxyUrl = { url: process.env.STUDIO_URL + "/fal/proxy", when: "always" };
fal.config(process.env.FAL_KEY ? { credentials: process.env.FAL_KEY, proxyUrl } : { proxyUrl });

const png = readFileSync(process.env.INPUT_PNG);
const dataUri = "data:image/png;base64," + png.toString("base64");
const blob = () => new Blob([png], { type: "image/png" });
const PP = "fal-ai/post-processing";
const grain = { image_url: dataUri, enable_grain: true, grain_intensity: 0.3, seed: 7 };
const invalid = { image_url: dataUri, enable_grain: true, grain_intensity: 5 };

async function subscribe(app, input, options = {}) {
  const updates = [];
  const result = await fal.subscribe(app, {
    input, logs: true, pollInterval: 100, ...options,
    onQueueUpdate: (u) => updates.push({ status: u.status, logs: (u.logs || []).map((l) => l.message) }),
  });
  return { result, updates };
}

async function until(app, requestId, done) {
  for (let i = 0; i < 600; i++) {
    const status = await fal.queue.status(app, { requestId, logs: true });
    if (done(status)) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("status never reached the expected state");
}

const steps = {
  run: () => fal.run(PP, { input: grain }),
  subscribe: () => subscribe(PP, grain),
  stream: () => subscribe(PP, grain, { mode: "streaming" }),
  queue: async () => {
    const submitted = await fal.queue.submit(PP, { input: grain });
    const statuses = [];
    const completed = await until(PP, submitted.request_id, (s) => {
      statuses.push(s.status);
      return s.status === "COMPLETED";
    });
    const result = await fal.queue.result(PP, { requestId: submitted.request_id });
    return { submitted, statuses, completed, result };
  },
  // A long upscale (overlapping tiles on 512x512) is cancelled once its tile logs show it running.
  cancel: async () => {
    const AURA = "fal-ai/aura-sr";
    const input = { image_url: dataUri, overlapping_tiles: true, seed: 1 };
    const { request_id: requestId } = await fal.queue.submit(AURA, { input });
    await until(AURA, requestId, (s) => (s.logs || []).some((l) => l.message.startsWith("AuraSR tile")));
    await fal.queue.cancel(AURA, { requestId });
    const completed = await until(AURA, requestId, (s) => s.status === "COMPLETED");
    const outcome = async (call) => {
      try {
        return { ok: await call() };
      } catch (e) {
        return describe(e);
      }
    };
    return { completed, result: await outcome(() => fal.queue.result(AURA, { requestId })),
             again: await outcome(() => fal.queue.cancel(AURA, { requestId })) };
  },
  webhook: async () => {
    const submitted = await fal.queue.submit(PP, { input: grain, webhookUrl: process.env.WEBHOOK_URL });
    await until(PP, submitted.request_id, (s) => s.status === "COMPLETED");
    return submitted;
  },
  upload: async () => fal.storage.upload(blob()),
  autoUpload: () => fal.run(PP, {
    input: { ...grain, image_url: new File([png], "photo.png", { type: "image/png" }) },
  }),
  invalidRun: () => fal.run(PP, { input: invalid }),
  invalidSubscribe: () => subscribe(PP, invalid),
  auraSr: () => subscribe("fal-ai/aura-sr", { image_url: dataUri, upscaling_factor: 4 }),
};

function describe(e) {
  return {
    name: e.name, message: e.message, status: e.status, body: e.body, requestId: e.requestId,
    validation: e instanceof ValidationError, api: e instanceof ApiError,
    fieldErrors: e instanceof ValidationError ? e.getFieldErrors("grain_intensity") : undefined,
  };
}

try {
  console.log(JSON.stringify({ ok: await steps[process.argv[2]]() }));
} catch (e) {
  console.log(JSON.stringify({ error: describe(e) }));
}
