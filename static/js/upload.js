// The upload page: engine/language/task pickers from GET /api/engines/, files from the
// picker, drag and drop or the clipboard, one upload at a time to POST /api/ocr/ with a
// real progress bar, then the result view in place.
import { el, formatBytes, getJSON, postForm } from "./api.js";
import { renderResult } from "./result.js";

const root = document.getElementById("uploader");
const input = document.getElementById("file-input");
const dropzone = document.getElementById("dropzone");
const list = document.getElementById("uploads");
const pickers = {
  engine: document.getElementById("engine"),
  lang: document.getElementById("lang"),
  task: document.getElementById("task"),
  rotate: document.getElementById("rotate"),
  side: document.getElementById("side"),
};
const note = document.getElementById("options-note");
const maxBytes = Number(root.dataset.maxBytes);
const extensions = new Set(root.dataset.accept.split(","));
const STORAGE_KEY = "onlineocr.options";

const ENGINE_LABELS = {
  auto: "Automatic",
  tesseract: "Tesseract (documents)",
  rapidocr: "RapidOCR (Chinese, photos)",
  ddddocr: "ddddocr (captchas)",
};
const LANGUAGE_LABELS = { eng: "English", chi_sim: "Chinese (simplified)" };
const TASK_LABELS = {
  document: "Document",
  idcard: "ID card (China)",
  line: "One line",
  text: "Captcha text",
  math: "Captcha sum",
  detect: "Captcha boxes",
  barcode: "Barcodes, QR codes",
};

const languageLabel = (code) =>
  code
    .split("+")
    .map((part) => LANGUAGE_LABELS[part] || part)
    .join(" + ");

let engines = [];

// ---- pickers -----------------------------------------------------------------

function fill(select, options, wanted) {
  select.replaceChildren(
    ...options.map(([value, label, disabled]) => el("option", { value, disabled }, label)),
  );
  const usable = options.filter((option) => !option[2]).map((option) => option[0]);
  select.value = usable.includes(wanted) ? wanted : usable[0] ?? "";
}

function chosenEngine() {
  return engines.find((engine) => engine.name === pickers.engine.value);
}

function languageOptions(engine) {
  if (!engine) {
    // Automatic: every language an available engine reads; the server routes by it.
    const codes = [...new Set(engines.filter((e) => e.available).flatMap((e) => e.languages))].sort();
    const both = codes.includes("eng") && codes.includes("chi_sim") ? [["chi_sim+eng", languageLabel("chi_sim+eng")]] : [];
    return [["", "Automatic"], ...codes.map((code) => [code, languageLabel(code)]), ...both];
  }
  if (!engine.languages.length) return [["", "Not used by this engine"]];
  const options = [["", `Default: ${languageLabel(engine.default_lang)}`]];
  for (const code of engine.languages) options.push([code, languageLabel(code)]);
  if (engine.languages.length > 1 && !engine.default_lang.includes("+")) {
    const all = engine.languages.join("+");
    options.push([all, languageLabel(all)]);
  }
  return options;
}

function taskOptions(engine) {
  if (engine) return engine.tasks.map((task) => [task, TASK_LABELS[task] || task]);
  const tasks = [...new Set(engines.filter((e) => e.available).flatMap((e) => e.tasks))];
  tasks.sort((a, b) => (a === "document" ? -1 : b === "document" ? 1 : 0));
  return tasks.map((task) => [task === "document" ? "" : task, TASK_LABELS[task] || task]);
}

function refreshPickers(saved = {}) {
  const engine = chosenEngine();
  fill(pickers.task, taskOptions(engine), saved.task ?? pickers.task.value);
  fill(pickers.lang, languageOptions(engine), saved.lang ?? pickers.lang.value);
  const captcha = !engine && pickers.task.value !== "";
  pickers.lang.disabled = (engine && !engine.languages.length) || captcha;
  pickers.task.disabled = pickers.task.options.length < 2;
  const documentTask = ["", "document"].includes(pickers.task.value);
  document.getElementById("rotate-field").hidden = pickers.engine.value !== "rapidocr" || !documentTask;
  document.getElementById("side-field").hidden = pickers.task.value !== "idcard";
}

function saveOptions() {
  const { engine, lang, task } = pickers;
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ engine: engine.value, lang: lang.value, task: task.value }));
  } catch {
    // Private windows may refuse storage; the choice then lasts for this page only.
  }
}

function loadOptions() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) || {};
  } catch {
    return {};
  }
}

async function setUpPickers() {
  try {
    engines = await getJSON(root.dataset.enginesUrl);
  } catch (error) {
    note.textContent = `Could not load the engines (${error.message}); the server will choose one.`;
    pickers.engine.replaceChildren(el("option", { value: "auto" }, "Automatic"));
    return;
  }
  const saved = loadOptions();
  const options = [["auto", ENGINE_LABELS.auto]];
  for (const engine of engines) {
    const label = ENGINE_LABELS[engine.name] || engine.name;
    options.push([engine.name, engine.available ? label : `${label} (unavailable)`, !engine.available]);
  }
  fill(pickers.engine, options, saved.engine);
  pickers.engine.disabled = false;
  const missing = engines.filter((engine) => !engine.available);
  note.textContent = missing.map((engine) => `${engine.name} is unavailable: ${engine.reason}`).join(" ");
  refreshPickers(saved);
}

pickers.engine.addEventListener("change", () => {
  refreshPickers();
  saveOptions();
});
pickers.task.addEventListener("change", () => {
  refreshPickers();
  saveOptions();
});
pickers.lang.addEventListener("change", saveOptions);
document.getElementById("options").addEventListener("submit", (event) => event.preventDefault());

// ---- files in ------------------------------------------------------------------

function problemWith(file) {
  const dot = file.name.lastIndexOf(".");
  const extension = dot > 0 ? file.name.slice(dot).toLowerCase() : "";
  const looksLikeImage = extension ? extensions.has(extension) : file.type.startsWith("image/");
  if (!looksLikeImage) return `This is not an image the service reads. Choose ${root.dataset.formats}.`;
  if (file.size === 0) return "This file is empty.";
  if (file.size > maxBytes) return `This file is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}.`;
  return "";
}

const queue = [];
let busy = false;

function addFiles(files) {
  const cards = [];
  for (const file of files) {
    const job = { file, options: currentOptions(), card: uploadCard(file) };
    cards.push(job.card.node);
    const problem = problemWith(file);
    if (problem) job.card.fail(problem);
    else {
      job.card.setState("queued", "Waiting…");
      queue.push(job);
    }
  }
  if (!cards.length) return;
  list.prepend(...cards);
  pump();
}

function currentOptions() {
  return {
    engine: pickers.engine.value || "auto",
    lang: pickers.lang.disabled ? "" : pickers.lang.value,
    task: pickers.task.value,
    rotate:
      pickers.engine.value === "rapidocr" && ["", "document"].includes(pickers.task.value) && pickers.rotate.checked,
    side: pickers.task.value === "idcard" ? pickers.side.value : "",
  };
}

async function pump() {
  if (busy || !queue.length) return;
  busy = true;
  root.setAttribute("aria-busy", "true");
  const { file, options, card } = queue.shift();
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [key, value] of Object.entries(options)) if (value) form.append(key, value);
  card.setState("uploading", "Uploading… 0%");
  try {
    const record = await postForm(root.dataset.ocrUrl, form, {
      onProgress: (fraction) => card.progress(fraction),
      onUploaded: () => card.setState("recognizing", "Recognizing…"),
    });
    card.done(record);
  } catch (error) {
    card.fail(error.message, error);
  } finally {
    busy = false;
    root.removeAttribute("aria-busy");
    pump();
  }
}

// ---- one upload's card -----------------------------------------------------------

function recordUrl(id) {
  return root.dataset.recordUrl.replace(/\/0\/$/, `/${id}/`);
}

function uploadCard(file) {
  const status = el("span", { class: "upload__status" });
  const bar = el("progress", { class: "upload__progress", max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const body = el("div", { class: "upload__body" });
  const node = el(
    "article",
    { class: "card upload" },
    el(
      "header",
      { class: "upload__head" },
      el("span", { class: "spinner", "aria-hidden": "true" }),
      el("h2", { class: "upload__name text-break" }, file.name || "pasted image"),
      el("span", { class: "upload__size muted" }, formatBytes(file.size)),
      status,
    ),
    bar,
    body,
  );
  const setState = (state, text) => {
    node.dataset.state = state;
    node.setAttribute("aria-busy", String(state === "uploading" || state === "recognizing"));
    status.textContent = text;
  };
  return {
    node,
    setState,
    progress(fraction) {
      const percent = Math.round(fraction * 100);
      bar.value = percent;
      if (node.dataset.state === "uploading") status.textContent = `Uploading… ${percent}%`;
    },
    done(record) {
      setState(record.status === "failed" ? "failed" : "done", record.status === "failed" ? "Failed" : "Done");
      bar.hidden = true;
      renderResult(body, record, { recordUrl: recordUrl(record.id) });
    },
    fail(message, error) {
      setState("error", "Not read");
      bar.hidden = true;
      const id = error && error.details && error.details.record_id;
      const link = id ? el("a", { href: recordUrl(id) }, "See the failed record") : null;
      body.replaceChildren(el("p", { class: "alert alert--error", role: "alert" }, message, link ? " " : "", link));
    },
  };
}

// ---- the three ways in: picker, drop, paste --------------------------------------------

input.addEventListener("change", () => {
  addFiles([...input.files]);
  input.value = "";
});

const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
document.addEventListener("dragover", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  dropzone.classList.add("is-dragging");
});
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) dropzone.classList.remove("is-dragging");
});
document.addEventListener("drop", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dropzone.classList.remove("is-dragging");
  addFiles([...event.dataTransfer.files]);
});

document.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files || [])];
  if (!files.length) return;
  event.preventDefault();
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  addFiles(
    files.map((file, index) => {
      const extension = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
      const name = `pasted-${stamp}${files.length > 1 ? `-${index + 1}` : ""}.${extension}`;
      return new File([file], name, { type: file.type });
    }),
  );
});

setUpPickers();
