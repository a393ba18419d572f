// The API keys page: copy a new key (shown once) to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copyTarget).textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    window.getSelection().selectAllChildren(document.getElementById(button.dataset.copyTarget));
    button.textContent = "Press Ctrl+C";
  }
});
