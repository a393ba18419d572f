// The record page: its data is in the page (json_script); draw the result view.
import { renderResult } from "./result.js";

for (const container of document.querySelectorAll("[data-result]")) {
  const source = document.getElementById(container.dataset.result);
  if (source) renderResult(container, JSON.parse(source.textContent));
}
