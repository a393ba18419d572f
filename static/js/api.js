// Shared helpers for talking to the API with the browser's session: the CSRF token,
// JSON reads, an upload with real progress, and one way to turn any failure into a sentence.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", details = {} } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details; // the rest of the error body, e.g. a failed record's record_id
  }
}

// The API answers every error as {"error": {"code", "message"}}; anything else
// (a proxy's HTML page, a dropped connection) still becomes a readable message.
export function errorFrom(status, bodyText) {
  let body = null;
  try {
    body = JSON.parse(bodyText);
  } catch {
    body = null;
  }
  const err = body && body.error;
  if (status === 401 || status === 403) {
    if (!err || err.code === "not_authenticated" || err.code === "authentication_failed") {
      return new ApiError("You are logged out. Log in again, then retry.", { status, code: "logged_out" });
    }
  }
  if (status === 403 && err && /^CSRF Failed/.test(err.message || "")) {
    // The page's token no longer matches the session (logged in again in another tab).
    return new ApiError("This page is out of date. Reload it, then retry.", { status, code: "stale_page" });
  }
  if (err && err.message) return new ApiError(err.message, { status, code: err.code || "", details: err });
  if (status === 0) return new ApiError("Could not reach the server. Check your connection and retry.");
  if (status === 413) return new ApiError("The file is too large for the server.", { status, code: "too_large" });
  return new ApiError(`The server answered ${status}. Please retry in a moment.`, { status });
}

export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch {
    throw errorFrom(0, "");
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text);
  return JSON.parse(text);
}

// POST multipart with XMLHttpRequest: fetch() cannot report upload progress.
// onProgress(fraction 0..1) while the body goes up; onUploaded() once it is all sent
// and the server is working. Resolves with the parsed JSON body of a 2xx answer.
export function postForm(url, formData, { onProgress = () => {}, onUploaded = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => {
      onProgress(1);
      onUploaded();
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(errorFrom(xhr.status, ""));
        }
      } else {
        reject(errorFrom(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => reject(errorFrom(0, "")));
    xhr.addEventListener("abort", () => reject(new ApiError("The upload was cancelled.", { code: "aborted" })));
    xhr.send(formData);
  });
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

// A small element builder: el("li", {class: "x", dataset: {i: 1}}, "text", child).
// Text is always set as text, never parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
