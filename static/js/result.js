// The result view: the image with a box over every detected line, the lines with their
// confidence, Copy and Download. Used by the upload page and the record page.
import { el } from "./api.js";

const PERCENT = (value, total) => `${((100 * value) / total).toFixed(3)}%`;

// A 4-point box in image pixels -> an axis-aligned rectangle in percent of the image,
// so the overlay follows the displayed size of the image without any resize handling.
function boxStyle(box, width, height) {
  const xs = box.map((point) => point[0]);
  const ys = box.map((point) => point[1]);
  const left = Math.max(0, Math.min(...xs));
  const top = Math.max(0, Math.min(...ys));
  const right = Math.min(width, Math.max(...xs));
  const bottom = Math.min(height, Math.max(...ys));
  return {
    left: PERCENT(left, width),
    top: PERCENT(top, height),
    width: PERCENT(Math.max(0, right - left), width),
    height: PERCENT(Math.max(0, bottom - top), height),
  };
}

function confidence(score) {
  if (score === null || score === undefined) return el("span", { class: "score score--none" }, "—");
  const percent = Math.round(score * 100);
  const level = score >= 0.9 ? "high" : score >= 0.7 ? "mid" : "low";
  return el("span", { class: `score score--${level}`, title: `Confidence ${percent}%` }, `${percent}%`);
}

function textFileName(fileName) {
  const stem = (fileName || "text").replace(/\.[^.]*$/, "") || "text";
  return `${stem}.txt`;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address is not a secure context: fall back to a selection.
  const area = el("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

function download(text, fileName) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const link = el("a", { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Hovering (or focusing) a line lights up its box, and hovering a box lights up its line.
function linkHighlights(root) {
  const toggle = (target, on) => {
    const item = target.closest("[data-line]");
    if (!item || !root.contains(item)) return;
    for (const node of root.querySelectorAll(`[data-line="${item.dataset.line}"]`)) {
      node.classList.toggle("is-active", on);
    }
  };
  root.addEventListener("mouseover", (event) => toggle(event.target, true));
  root.addEventListener("mouseout", (event) => toggle(event.target, false));
  root.addEventListener("focusin", (event) => toggle(event.target, true));
  root.addEventListener("focusout", (event) => toggle(event.target, false));
}

function figure(record) {
  if (record.pages) {
    // A PDF: no picture to draw boxes on; its text, page by page, is listed beside.
    const count = record.pages.length;
    return el(
      "figure",
      { class: "ocr-figure ocr-figure--pdf" },
      el("p", { class: "muted" }, `PDF, ${count} page${count === 1 ? "" : "s"}: every page's lines are listed.`),
      el("a", { class: "button", href: record.image_url, download: record.file_name }, "Download the PDF"),
    );
  }
  const lines = record.lines || [];
  const img = el("img", {
    class: "ocr-figure__img",
    src: record.image_url,
    alt: `The uploaded image ${record.file_name}`,
    width: record.width,
    height: record.height,
    decoding: "async",
  });
  const overlay = el(
    "div",
    { class: "ocr-overlay", "aria-hidden": "true" },
    lines.map((line, index) =>
      Array.isArray(line.box) && line.box.length === 4
        ? el("div", {
            class: "ocr-box",
            dataset: { line: index },
            title: line.text,
            style: boxStyle(line.box, record.width, record.height),
          })
        : null,
    ),
  );
  return el("figure", { class: "ocr-figure" }, img, overlay);
}

function lineList(record) {
  const lines = record.lines || [];
  if (!lines.length) {
    return record.text
      ? el("pre", { class: "ocr-plain" }, record.text)
      : el("p", { class: "muted ocr-empty" }, "No text was found in this image.");
  }
  const list = el(
    "ol",
    { class: "ocr-lines", "aria-label": "Recognized lines" },
    lines.map((line, index) =>
      el(
        "li",
        { class: "ocr-line", tabindex: index === 0 ? 0 : -1, dataset: { line: index } },
        line.page ? el("span", { class: "ocr-line__page muted" }, `p. ${line.page} `) : null,
        el("span", { class: "ocr-line__text" }, line.text),
        confidence(line.score),
      ),
    ),
  );
  rovingFocus(list);
  return list;
}

// One tab stop for the whole list, however long (a PDF has hundreds of lines): only the
// current line has tabindex 0, the others -1; the arrow keys, Home and End move between them.
const MOVES = {
  ArrowDown: (index) => index + 1,
  ArrowUp: (index) => index - 1,
  Home: () => 0,
  End: (_, last) => last,
};

function rovingFocus(list) {
  const items = () => list.querySelectorAll(":scope > .ocr-line");
  const makeCurrent = (item) => {
    for (const other of items()) other.tabIndex = other === item ? 0 : -1;
  };
  // A click or a script's focus() makes that line the one Tab comes back to.
  list.addEventListener("focusin", (event) => {
    const item = event.target.closest(".ocr-line");
    if (item && item.parentElement === list) makeCurrent(item);
  });
  list.addEventListener("keydown", (event) => {
    const move = MOVES[event.key];
    const item = event.target.closest(".ocr-line");
    if (!move || !item || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const all = [...items()];
    const next = all[Math.min(all.length - 1, Math.max(0, move(all.indexOf(item), all.length - 1)))];
    event.preventDefault(); // the list does not scroll by itself; focus() brings the line into view
    next.focus(); // focusin makes it the current line
  });
}

// task=idcard: the card's fields, as a read-only form (each field labelled, copyable).
const CARD_FIELDS = [
  ["name", "姓名 Name"],
  ["sex", "性别 Sex"],
  ["nationality", "民族 Nationality"],
  ["birth", "出生 Date of birth"],
  ["address", "住址 Address"],
  ["num", "公民身份号码 ID number"],
  ["issue", "签发机关 Issued by"],
  ["start_date", "有效期限 Valid from"],
  ["end_date", "有效期限 Valid until"],
];

function cardFields(card) {
  const rows = CARD_FIELDS.filter(([key]) => key in card).map(([key, label]) => {
    const id = `card-${key}`;
    const input = el("input", { id, name: key, type: "text", readonly: true, class: "card-fields__input" });
    input.value = card[key];
    if (!card[key]) input.placeholder = "not read";
    const wide = key === "address" || key === "issue"; // long text gets the whole row
    return el("div", { class: wide ? "field card-fields__wide" : "field" }, el("label", { for: id }, label), input);
  });
  const verdict = card.success
    ? el("p", { class: "card-fields__status muted" }, "Every field was read; the number's check digit, birth date and sex agree.")
    : el("p", { class: "alert alert--error card-fields__status", role: "status" }, "Some fields could not be read: they are left empty.");
  return el("form", { class: "card-fields", "aria-label": "ID card fields" }, verdict, rows);
}

// task=barcode: each symbol's format beside its payload (the payloads are also the lines).
function barcodeList(barcodes) {
  return el(
    "dl",
    { class: "barcodes", "aria-label": "Barcodes found" },
    barcodes.flatMap((barcode) => [
      el("dt", { class: "barcodes__format" }, barcode.page ? `${barcode.format}, page ${barcode.page}` : barcode.format),
      el("dd", { class: "barcodes__text" }, barcode.text),
    ]),
  );
}

function meta(record) {
  const facts = [
    ["Engine", record.engine],
    ["Language", record.lang || "—"],
    ["Time", `${record.duration_ms} ms`],
    ["Size", `${record.width}×${record.height}`],
  ];
  return el(
    "dl",
    { class: "facts" },
    facts.map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value))),
  );
}

function tools(record, { recordUrl }) {
  const status = el("span", { class: "tools__status", role: "status" });
  const flash = (message) => {
    status.textContent = message;
    clearTimeout(status.timer);
    status.timer = setTimeout(() => (status.textContent = ""), 2500);
  };
  const copy = el(
    "button",
    {
      type: "button",
      class: "btn btn--small",
      "data-action": "copy",
      onclick: () => copyText(record.text).then(
        () => flash("Copied to the clipboard."),
        () => flash("Copying was refused: select the text instead."),
      ),
    },
    "Copy text",
  );
  const save = el(
    "button",
    {
      type: "button",
      class: "btn btn--small btn--ghost",
      "data-action": "download",
      onclick: () => download(record.text, textFileName(record.file_name)),
    },
    "Download .txt",
  );
  const hasText = Boolean(record.text);
  copy.disabled = !hasText;
  save.disabled = !hasText;
  const open = recordUrl ? el("a", { class: "btn btn--small btn--ghost", href: recordUrl }, "Open") : null;
  const toggle = el("input", { type: "checkbox", checked: true, class: "tools__toggle" });
  const boxes = el("label", { class: "tools__check" }, toggle, "Boxes");
  return { node: el("div", { class: "tools" }, copy, save, open, boxes, status), toggle };
}

export function renderResult(container, record, { recordUrl = "" } = {}) {
  const failed = record.status === "failed";
  const { node: toolbar, toggle } = tools(record, { recordUrl });
  const fig = figure(record);
  toggle.addEventListener("change", () => fig.classList.toggle("ocr-figure--plain", !toggle.checked));
  const text = el(
    "div",
    { class: "result__text" },
    meta(record),
    failed
      ? el("div", { class: "alert alert--error", role: "alert" }, record.error || "Recognition failed.")
      : [
          toolbar,
          record.idcard ? cardFields(record.idcard) : null,
          record.barcodes ? barcodeList(record.barcodes) : null,
          lineList(record),
        ],
  );
  const root = el("div", { class: "result" }, el("div", { class: "result__media" }, fig), text);
  linkHighlights(root);
  container.replaceChildren(root);
  return root;
}
