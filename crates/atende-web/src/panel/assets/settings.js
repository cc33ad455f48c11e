// Settings page: reads each registry control (`[data-setting]` with its `data-kind`), sends only
// what changed in one `PUT /api/v1/settings` (all or nothing), shows a refusal next to its field,
// and puts the stored (normalised) values back. The SMTP password is sent only when typed, or as
// `null` when "remove" is ticked; the page never receives it.

import { t, put } from "./common.js";
import { hoursEditor } from "./admin.js";

const form = document.getElementById("settings-form");
const status = document.getElementById("settings-status");
const formError = document.getElementById("settings-error");
const settings = [...form.querySelectorAll("[data-setting]")];
const editors = new Map();

for (const root of form.querySelectorAll(".hours-editor")) {
  const editor = hoursEditor(root);
  try {
    editor.value = JSON.parse(root.dataset.value || "null");
  } catch {
    editor.value = null;
  }
  editors.set(root.dataset.field, editor);
}

const control = (key) => document.getElementById(`s-${key}`);

/** The value of one setting as the API takes it; `undefined` = nothing to send. */
function read(box) {
  const key = box.dataset.setting;
  const input = control(key);
  switch (box.dataset.kind) {
    case "bool":
      return input.checked;
    case "int": {
      const text = input.value.trim();
      // Anything else goes as typed, so the refusal names the field.
      return /^-?\d+$/.test(text) ? Number(text) : text;
    }
    case "set":
      return [...box.querySelectorAll("input[type=checkbox]:checked")].map((item) => item.value);
    case "phone_list":
      return input.value
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter(Boolean);
    case "flow_id":
    case "user_id":
      return input.value === "" ? null : Number(input.value);
    case "schedule":
      return editors.get(key)?.value;
    case "secret":
      if (document.getElementById(`remove-${key}`)?.checked) return null;
      return input.value === "" ? undefined : input.value;
    default:
      return input.value;
  }
}

/** Puts a stored value back into its control (after a save the server's normal form shows). */
function write(box, view) {
  const key = box.dataset.setting;
  const input = control(key);
  const value = view.value;
  switch (box.dataset.kind) {
    case "bool":
      input.checked = value === true;
      break;
    case "set":
      for (const item of box.querySelectorAll("input[type=checkbox]")) item.checked = (value ?? []).includes(item.value);
      break;
    case "phone_list":
      input.value = (value ?? []).join("\n");
      break;
    case "flow_id":
    case "user_id":
      input.value = value === null ? "" : String(value);
      break;
    case "schedule":
      if (editors.has(key)) editors.get(key).value = value;
      break;
    case "secret": {
      input.value = "";
      const remove = document.getElementById(`remove-${key}`);
      remove.checked = false;
      remove.closest("label").hidden = !view.is_set;
      const badge = document.querySelector(`#state-${key} .badge`);
      badge.textContent = view.is_set ? t("settings.secret.set") : t("settings.secret.unset");
      badge.className = `badge ${view.is_set ? "badge-ok" : "badge-muted"}`;
      document.getElementById(`state-${key}`).dataset.set = String(view.is_set);
      break;
    }
    default:
      input.value = value === null || value === undefined ? "" : String(value);
  }
}

function snapshot() {
  const values = new Map();
  for (const box of settings) {
    if (box.dataset.kind !== "secret") values.set(box.dataset.setting, JSON.stringify(read(box)));
  }
  return values;
}

let saved = snapshot();

function changes() {
  const values = {};
  for (const box of settings) {
    const key = box.dataset.setting;
    const value = read(box);
    if (value === undefined) continue;
    if (box.dataset.kind === "secret" || JSON.stringify(value) !== saved.get(key)) values[key] = value;
  }
  return values;
}

function clearErrors() {
  formError.hidden = true;
  for (const note of form.querySelectorAll(".field-error")) {
    note.hidden = true;
    note.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const box of form.querySelectorAll(".setting.invalid")) box.classList.remove("invalid");
}

function showFieldError(key, message) {
  const box = form.querySelector(`[data-setting="${CSS.escape(key)}"]`);
  const note = document.getElementById(`err-${key}`);
  if (!box || !note) return false;
  note.textContent = message;
  note.hidden = false;
  box.classList.add("invalid");
  const target = box.querySelector("input:not([type=hidden]), select, textarea");
  if (target) {
    target.setAttribute("aria-invalid", "true");
    const ids = (target.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && id !== note.id);
    target.setAttribute("aria-describedby", [...ids, note.id].join(" "));
    target.focus();
  }
  return true;
}

form.addEventListener("input", () => {
  status.textContent = Object.keys(changes()).length ? t("settings.page.unsaved") : "";
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  if (!form.reportValidity()) return;
  const values = changes();
  if (!Object.keys(values).length) {
    status.textContent = t("settings.page.nothing_changed");
    return;
  }
  const button = document.getElementById("settings-save");
  button.disabled = true;
  status.textContent = t("settings.page.saving");
  try {
    const stored = await put("/api/v1/settings", { values });
    for (const view of stored) {
      const box = form.querySelector(`[data-setting="${CSS.escape(view.key)}"]`);
      if (box) write(box, view);
    }
    saved = snapshot();
    // Said in the save bar (a live region) rather than a toast, which would cover the button.
    status.textContent = t("settings.page.saved");
  } catch (error) {
    status.textContent = t("settings.page.fix_errors");
    if (!(error?.field && showFieldError(error.field, error.message))) {
      formError.textContent = error?.message || t("common.js.request_failed");
      formError.hidden = false;
    }
  } finally {
    button.disabled = false;
  }
});

window.addEventListener("beforeunload", (event) => {
  if (Object.keys(changes()).length) event.preventDefault();
});

form.dataset.ready = "true";
