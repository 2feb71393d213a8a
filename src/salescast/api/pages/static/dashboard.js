// salescast dashboard: the few things a server-rendered page cannot do by itself.
// - activate / roll back a model version through the admin API, with the token
//   asked once per tab (kept in sessionStorage, sent only to this origin);
// - reload the jobs page while jobs run.
"use strict";

const TOKEN_KEY = "salescast.adminToken";

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token");
  return new Promise((resolve) => {
    const cancel = document.getElementById("token-cancel");
    const done = (value) => {
      dialog.removeEventListener("close", onClose);
      cancel.removeEventListener("click", onCancel);
      resolve(value);
    };
    const onClose = () => done(dialog.returnValue === "ok" && input.value ? input.value : null);
    const onCancel = () => { dialog.close("cancel"); };
    dialog.addEventListener("close", onClose);
    cancel.addEventListener("click", onCancel);
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

async function activate(button) {
  const status = document.getElementById("activate-status");
  const product = button.dataset.product;
  const version = button.dataset.version;
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = await askToken();
    if (!token) { status.textContent = "Not changed: no token given."; return; }
  }
  button.disabled = true;
  status.textContent = `Activating version ${version}…`;
  const url = `/products/${encodeURIComponent(product)}/models/${encodeURIComponent(version)}/activate`;
  const response = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) {
    // Read the answer to its end before reloading: a reload while its body is
    // still arriving aborts the request, and the browser reports it as failed.
    try { await response.text(); } catch (_) { /* activated all the same: the reload shows it */ }
    sessionStorage.setItem(TOKEN_KEY, token);
    status.textContent = `Version ${version} is active (pinned). Reloading…`;
    window.location.reload();
    return;
  }
  if (response.status === 401 || response.status === 403) sessionStorage.removeItem(TOKEN_KEY);
  let detail = `HTTP ${response.status}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  status.textContent = `Not changed: ${detail}`;
  button.disabled = false;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.activate")) {
    button.addEventListener("click", () => { activate(button); });
  }
  const refreshing = document.getElementById("refreshing");
  if (refreshing) {
    setTimeout(() => window.location.reload(), Number(refreshing.dataset.refresh) * 1000);
  }
});
