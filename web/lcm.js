// comfyui-lcm frontend extension: step progress + ETA on the sampler, a live loss chart on
// the training nodes, and help text for the pack's nodes. Plain JS, loaded by ComfyUI (and by
// `lcm-run serve`) from the pack's WEB_DIRECTORY. The latent preview itself is drawn by the
// frontend from the server's binary PREVIEW_IMAGE frames.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const SAMPLERS = new Set(["LCMSampler"]);
const TRAINERS = new Set(["LCMFineTune", "LCMDistillLoRA"]);
const STEP_TEXT_EVENT = "lcm.step_text";
const MAX_POINTS = 2000;

const HELP = {
  LCMCheckpointLoader: "Loads an LCM (or SD) checkpoint from models/checkpoints. LCM-distilled UNets are detected.",
  LCMLoraLoader: "Applies a LoRA (an LCM-LoRA or a style LoRA) to the model and, optionally, the text encoder.",
  LCMTextEncode: "Encodes the prompt with the checkpoint's text encoder(s).",
  LCMSampler: "LCM / TCD sampling: 2-8 steps, guidance 1-2. Shows step progress, ETA and a live latent preview.",
  LCMVAEDecode: "Decodes latents to images with the checkpoint's VAE.",
  LCMVAEEncode: "Encodes images to latents (img2img: lower the sampler's denoise).",
  LCMFineTune: "Fine-tunes an LCM on captioned images (LCF). The chart shows the training loss live.",
  LCMDistillLoRA: "Distils an LCM-LoRA from an SD teacher (LCD). The chart shows the training loss live.",
};

/** Per-node run state ({started, value, max, losses}), keyed by node id (string); exported for tests. */
export const runs = new Map();

function nodeById(id) {
  const graph = app.graph;
  if (!graph || id === null || id === undefined) return null;
  return graph.getNodeById(Number(id)) ?? graph.getNodeById(id) ?? null;
}

function stateFor(id) {
  let run = runs.get(String(id));
  if (!run) {
    run = { started: 0, value: 0, max: 0, losses: [] };
    runs.set(String(id), run);
  }
  return run;
}

function formatSeconds(s) {
  if (!isFinite(s) || s < 0) return "…";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

/** "step 3/8 · 0.4s/it · ETA 2.1s" */
export function progressText(run, now = performance.now()) {
  if (!run.max) return "";
  const elapsed = (now - run.started) / 1000;
  const perStep = run.value > 0 ? elapsed / run.value : NaN;
  const eta = perStep * (run.max - run.value);
  return `step ${run.value}/${run.max} · ${formatSeconds(perStep)}/it · ETA ${formatSeconds(eta)}`;
}

/** The first number after "loss" in a step text ("loss 0.123", "loss=1e-2"), else NaN. */
export function parseLoss(text) {
  const match = /loss\s*[=:]?\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)/i.exec(String(text ?? ""));
  return match ? Number(match[1]) : NaN;
}

function drawProgress(ctx, node, run) {
  const text = progressText(run);
  if (!text) return;
  const w = node.size[0];
  const y = node.size[1] - 22;
  ctx.save();
  ctx.fillStyle = "rgba(0,0,0,0.35)";
  ctx.fillRect(6, y, w - 12, 16);
  ctx.fillStyle = "#3a8ee6";
  ctx.fillRect(6, y, ((w - 12) * run.value) / run.max, 16);
  ctx.fillStyle = "#fff";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillText(text, 10, y + 8);
  ctx.restore();
}

function drawLossChart(ctx, node, run) {
  const losses = run.losses;
  if (losses.length < 1) return;
  const pad = 8;
  const h = 90;
  const w = node.size[0] - 2 * pad;
  const top = node.size[1] - h - 26;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of losses) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi - lo || 1;
  ctx.save();
  ctx.fillStyle = "rgba(0,0,0,0.35)";
  ctx.fillRect(pad, top, w, h);
  ctx.strokeStyle = "#e6a23a";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  losses.forEach((v, i) => {
    const x = pad + (losses.length === 1 ? 0 : (i / (losses.length - 1)) * w);
    const y = top + h - ((v - lo) / span) * (h - 8) - 4;
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#ddd";
  ctx.font = "10px sans-serif";
  ctx.fillText(`loss ${losses[losses.length - 1].toPrecision(4)} (min ${lo.toPrecision(3)})`, pad + 4, top + 12);
  ctx.restore();
}

function redraw(id) {
  const node = nodeById(id);
  if (node) node.setDirtyCanvas(true, false);
}

// The editor maps model folders to ComfyUI's core loader nodes and fails to build any node
// with a `ckpt_name`/`lora_name` combo when those classes are absent, as under `lcm-run
// serve`. Declare hidden (deprecated) stand-ins for the missing ones; inside ComfyUI they
// all exist and nothing is added. The server refuses them if ever queued.
const CORE_MODEL_LOADERS = {
  CheckpointLoaderSimple: "ckpt_name", ImageOnlyCheckpointLoader: "ckpt_name", LoraLoader: "lora_name",
  LoraLoaderModelOnly: "lora_name", VAELoader: "vae_name", ControlNetLoader: "control_net_name",
  UNETLoader: "unet_name", UpscaleModelLoader: "model_name", StyleModelLoader: "style_model",
  GLIGENLoader: "gligen_name",
};

export function missingCoreLoaders(defs) {
  const added = {};
  for (const [name, input] of Object.entries(CORE_MODEL_LOADERS)) {
    if (name in defs) continue;
    added[name] = {
      name, display_name: name, category: "_hidden", description: "Not available in lcm-run serve.",
      python_module: "nodes", deprecated: true, output_node: false,
      input: { required: { [input]: [[], {}] } }, input_order: { required: [input] },
      output: [], output_name: [], output_is_list: [],
    };
  }
  return added;
}

app.registerExtension({
  name: "comfyui-lcm.progress",

  async afterConfigureGraph() {
    runs.clear(); // a newly loaded workflow shows no stale progress
  },

  async addCustomNodeDefs(defs) {
    Object.assign(defs, missingCoreLoaders(defs));
  },

  async setup() {
    api.addEventListener("execution_start", () => runs.clear());
    api.addEventListener("executing", ({ detail }) => {
      const id = detail && typeof detail === "object" ? detail.node : detail;
      if (id === null || id === undefined) return;
      const run = stateFor(id);
      run.started = performance.now();
      run.value = 0;
      run.max = 0;
    });
    api.addEventListener("progress", ({ detail }) => {
      if (!detail || detail.node === undefined) return;
      const run = stateFor(detail.node);
      if (!run.started) run.started = performance.now();
      run.value = detail.value;
      run.max = detail.max;
      redraw(detail.node);
    });
    api.addEventListener(STEP_TEXT_EVENT, ({ detail }) => {
      if (!detail || detail.node === undefined) return;
      const loss = parseLoss(detail.text);
      if (!isFinite(loss)) return;
      const run = stateFor(detail.node);
      run.losses.push(loss);
      if (run.losses.length > MAX_POINTS) run.losses.splice(0, run.losses.length - MAX_POINTS);
      redraw(detail.node);
    });
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData?.name;
    if (!name || !(name in HELP)) return;
    if (!nodeData.description) nodeData.description = HELP[name];
    const isSampler = SAMPLERS.has(name);
    const isTrainer = TRAINERS.has(name);
    if (!isSampler && !isTrainer) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      if (isTrainer) this.size[1] = Math.max(this.size[1], this.computeSize()[1] + 120);
      return result;
    };

    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const result = onDrawForeground?.apply(this, arguments);
      if (this.flags?.collapsed) return result;
      const run = runs.get(String(this.id));
      if (run) {
        if (isTrainer) drawLossChart(ctx, this, run);
        drawProgress(ctx, this, run);
      }
      return result;
    };
  },
});
