// Shared by the admin pages and the settings page (import from "./admin.js"): building DOM
// without innerHTML, modal forms in <dialog>, the API's refusals shown next to their field,
// tables that become cards on a phone, the weekly business-hours editor, and `crud()` for the
// pages that only list, create, edit and delete one resource.

import { t, get, post, patch, del, toast, reportError } from "./common.js";

/** `el("button", {class: "x", text: "Ok", onclick: f, "aria-label": "…"}, child, …)`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.className = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "checked" || name === "value" || name === "selected" || name === "disabled") node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The first `max` characters of `text`, with an ellipsis when cut. */
export function excerpt(text, max = 80) {
  const plain = String(text ?? "").replace(/\s+/g, " ").trim();
  return plain.length > max ? `${plain.slice(0, max - 1)}…` : plain;
}

/** A small coloured chip (tags, queues). */
export function chip(name, color) {
  const node = el("span", { class: "chip" }, el("span", { class: "swatch", "aria-hidden": "true" }), name);
  if (color) node.firstChild.style.background = color;
  return node;
}

// ---- dialogs -------------------------------------------------------------------------------

/** Wires a `<dialog>`: `[data-close]` buttons close it; focus goes back to the opener. */
export function setupDialog(dialog) {
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
  return dialog;
}

/** Opens a modal dialog with its title for "new" or "edit" and focuses its first field. */
export function openDialog(dialog, { editing = false, opener = document.activeElement } = {}) {
  const form = dialog.querySelector("form");
  if (form) clearErrors(form);
  const title = dialog.querySelector("h2[data-new]");
  if (title) title.textContent = editing ? title.dataset.edit : title.dataset.new;
  dialog.dataset.mode = editing ? "edit" : "new";
  for (const item of dialog.querySelectorAll("[data-only]")) {
    item.hidden = item.dataset.only !== dialog.dataset.mode;
  }
  dialog.addEventListener("close", () => opener?.focus?.(), { once: true });
  dialog.showModal();
  const first = dialog.querySelector("input:not([type=hidden]):not([disabled]):not([hidden]), select:not([disabled]), textarea");
  first?.focus();
}

// ---- errors --------------------------------------------------------------------------------

/** Removes every error shown in `form`. */
export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error[data-dynamic]")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    const ids = (node.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && !id.startsWith("err-"));
    if (ids.length) node.setAttribute("aria-describedby", ids.join(" "));
    else node.removeAttribute("aria-describedby");
  }
  const alert = form.querySelector(".form-error");
  if (alert) {
    alert.hidden = true;
    alert.textContent = "";
  }
}

/** The control an API field names (`business_hours.days.mon[1].end` falls back to its parents). */
export function findControl(form, field) {
  let path = String(field ?? "");
  while (path) {
    const escaped = CSS.escape(path);
    const found = form.querySelector(`[data-field="${escaped}"]`) ?? form.querySelector(`[name="${escaped}"]`);
    if (found) return found;
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    if (cut <= 0) break;
    path = path.slice(0, cut);
  }
  return null;
}

let errorCount = 0;

/** Shows `message` next to `control` (below its label or inside its group) and focuses it. */
export function markInvalid(control, message) {
  errorCount += 1;
  const id = `err-dyn-${errorCount}`;
  const note = el("p", { class: "field-error", id, "data-dynamic": "true", text: message });
  const focusable = control.matches("input, select, textarea")
    ? control
    : control.querySelector("input:not([type=hidden]), select, textarea");
  const anchor = control.matches("input, select, textarea") ? control.closest("label") ?? control : null;
  if (anchor) anchor.after(note);
  else control.append(note);
  if (focusable) {
    focusable.setAttribute("aria-invalid", "true");
    const ids = (focusable.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
    focusable.setAttribute("aria-describedby", [...ids, id].join(" "));
    focusable.focus();
  }
}

/** Shows an API refusal in `form`: next to the field it names, or at the top of the form. */
export function showError(form, error) {
  if (error?.name === "AbortError") return;
  const control = error?.field ? findControl(form, error.field) : null;
  if (control) {
    markInvalid(control, error.message);
    return;
  }
  const alert = form.querySelector(".form-error");
  if (alert) {
    alert.textContent = error?.message || t("common.js.request_failed");
    alert.hidden = false;
    alert.focus?.();
  } else {
    reportError(error);
  }
}

// ---- tables --------------------------------------------------------------------------------

/** Replaces the rows of `table` (its `<tbody>`), toggling the "empty" note after it. */
export function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  labelCells(table);
  const empty = table.parentElement?.querySelector(".empty");
  if (empty) empty.hidden = body.rows.length > 0;
}

/** Each cell carries its column's name, shown beside it when the table turns into cards. */
export function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.trim());
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((cell, index) => {
      if (names[index]) cell.dataset.label = names[index];
    });
  }
}

/** A table row of `cells` (nodes or text); the first is the row's header. */
export function tableRow(cells, attrs = {}) {
  return el(
    "tr",
    attrs,
    cells.map((cell, index) => el(index === 0 ? "th" : "td", index === 0 ? { scope: "row" } : {}, cell)),
  );
}

/** A button of a row's action cell; `label` is read out with the row's name. */
export function rowButton(text, name, onclick, { danger = false, id } = {}) {
  return el("button", {
    type: "button",
    class: danger ? "button small danger" : "button small",
    text,
    "aria-label": `${text}: ${name}`,
    id,
    onclick,
  });
}

/** Checkboxes of `items` (`{id, name, color?}`) in `box`, `checked` the chosen ids. */
export function fillChecklist(box, items, checked = []) {
  const chosen = new Set(checked.map(Number));
  box.replaceChildren(
    ...items.map((item) =>
      el(
        "label",
        { class: "check" },
        el("input", { type: "checkbox", value: String(item.id), checked: chosen.has(Number(item.id)) }),
        item.color ? chip(item.name, item.color) : item.name,
      ),
    ),
  );
}

/** The ids checked in a checklist. */
export function checkedIds(box) {
  return [...box.querySelectorAll("input[type=checkbox]:checked")].map((input) => Number(input.value));
}

// ---- business hours ------------------------------------------------------------------------

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const TIME_PATTERN = "([01][0-9]|2[0-3]):[0-5][0-9]|24:00";

/**
 * The weekly hours editor (SPEC §8: up to two windows a day, holidays) inside `root`
 * (`data-field` names the API field; `data-inherit="true"` offers "use the company's hours",
 * which is `null`). Returns `{value}`: read and set the schedule JSON.
 */
export function hoursEditor(root) {
  const field = root.dataset.field || "business_hours";
  const inherit = root.dataset.inherit === "true";
  const uid = root.id || `hours-${Math.random().toString(36).slice(2)}`;
  const modes = inherit ? ["inherit", "always", "custom"] : ["always", "custom"];
  const radios = {};
  const modeBox = el(
    "div",
    { class: "hours-modes", role: "radiogroup", "aria-label": t("admin.hours.mode") },
    modes.map((mode) => {
      const input = el("input", { type: "radio", name: `${uid}-mode`, value: mode });
      radios[mode] = input;
      input.addEventListener("change", sync);
      return el("label", { class: "check" }, input, t(`admin.hours.mode_${mode}`));
    }),
  );

  const inputs = {};
  const windowLabel = (n) => t("admin.hours.window", { n });
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      el("th", { scope: "col", text: t("admin.hours.day") }),
      [1, 2].map((n) => el("th", { scope: "col", colspan: "2", text: windowLabel(n) })),
    ),
  );
  const body = el(
    "tbody",
    {},
    DAYS.map((day) => {
      const dayName = t(`admin.hours.${day}`);
      inputs[day] = [0, 1].map((index) =>
        ["start", "end"].map((edge) =>
          el("input", {
            type: "text",
            inputmode: "numeric",
            class: "time",
            maxlength: "5",
            size: "5",
            pattern: TIME_PATTERN,
            placeholder: "--:--",
            "aria-label": `${dayName}, ${windowLabel(index + 1)}, ${t(`admin.hours.${edge}`)}`,
            "data-day": day,
          }),
        ),
      );
      return el(
        "tr",
        {},
        el("th", { scope: "row", text: dayName }),
        inputs[day].map(([start, end]) => [
          el("td", {}, start),
          el("td", { class: "until" }, el("span", { class: "muted", "aria-hidden": "true", text: "–" }), end),
        ]),
      );
    }),
  );
  const copy = el("button", {
    type: "button",
    class: "button small",
    text: t("admin.hours.copy_monday"),
    onclick: () => {
      for (const day of ["tue", "wed", "thu", "fri"]) {
        inputs[day].forEach((pair, index) => {
          pair[0].value = inputs.mon[index][0].value;
          pair[1].value = inputs.mon[index][1].value;
        });
      }
      root.dispatchEvent(new Event("input", { bubbles: true }));
    },
  });
  const holidays = el("textarea", {
    rows: "2",
    spellcheck: "false",
    "data-field": `${field}.holidays`,
    placeholder: "2026-12-25",
  });
  const custom = el(
    "div",
    { class: "hours-custom" },
    el("div", { class: "table-wrap" }, el("table", { class: "hours-table" }, head, body)),
    el("p", { class: "muted hint", text: t("admin.hours.closed_hint") }),
    el("p", {}, copy),
  );
  const holidayBox = el(
    "label",
    { class: "hours-holidays" },
    t("admin.hours.holidays"),
    holidays,
    el("span", { class: "muted hint", text: t("admin.hours.holidays_help") }),
  );
  root.replaceChildren(modeBox, custom, holidayBox);

  function mode() {
    return modes.find((m) => radios[m].checked) ?? modes[0];
  }

  function sync() {
    const current = mode();
    custom.hidden = current !== "custom";
    holidayBox.hidden = current === "inherit";
  }

  function set(value) {
    for (const day of DAYS) {
      const windows = value?.days?.[day] ?? [];
      inputs[day].forEach(([start, end], index) => {
        start.value = windows[index]?.start ?? "";
        end.value = windows[index]?.end ?? "";
      });
    }
    holidays.value = (value?.holidays ?? []).join("\n");
    const chosen = value === null || value === undefined ? (inherit ? "inherit" : "always") : value.always_open ? "always" : "custom";
    radios[chosen].checked = true;
    sync();
  }

  function read() {
    const current = mode();
    if (current === "inherit") return null;
    const dates = holidays.value.split(/[\s,;]+/).map((d) => d.trim()).filter(Boolean);
    if (current === "always") return { always_open: true, holidays: dates };
    const days = {};
    for (const day of DAYS) {
      const windows = [];
      for (const [start, end] of inputs[day]) {
        start.removeAttribute("data-field");
        end.removeAttribute("data-field");
        const s = start.value.trim();
        const e = end.value.trim();
        if (!s && !e) continue;
        // So a refusal of `business_hours.days.mon[0].end` lands on this very input.
        start.dataset.field = `${field}.days.${day}[${windows.length}].start`;
        end.dataset.field = `${field}.days.${day}[${windows.length}].end`;
        windows.push({ start: s, end: e });
      }
      if (windows.length) days[day] = windows;
    }
    return { days, holidays: dates };
  }

  set(null);
  return {
    get value() {
      return read();
    },
    set value(value) {
      set(value);
    },
  };
}

/** How a queue's or user's hours read in a table. */
export function hoursSummary(value) {
  if (value === null || value === undefined) return t("admin.hours.mode_inherit");
  if (value.always_open) return t("admin.hours.mode_always");
  return t("admin.hours.mode_custom");
}

// ---- one-resource pages ----------------------------------------------------------------------

/**
 * A page that lists `base` (`GET`), creates (`POST`), edits (`PATCH base/id`) and deletes
 * (`DELETE base/id`) one kind of item:
 *   table, dialog, newButton: CSS selectors;
 *   load(): the items (defaults to `GET base`);
 *   row(item): the cells; name(item): how the item is called in labels and confirmations;
 *   fill(form, item|null) and read(form, item|null): between the form and the API body;
 *   canChange(item): whether edit/delete are offered; extraActions(item): more row buttons.
 * Returns { reload, edit(item), items() }.
 */
export function crud(options) {
  const { base, row, name, fill, read } = options;
  const table = document.querySelector(options.table);
  const dialog = setupDialog(document.querySelector(options.dialog));
  const form = dialog.querySelector("form");
  const canChange = options.canChange ?? (() => true);
  const load = options.load ?? (() => get(base));
  let items = [];
  let editing = null;

  function open(item) {
    editing = item;
    form.reset();
    fill(form, item);
    openDialog(dialog, { editing: item !== null });
  }

  async function remove(item) {
    if (!window.confirm(t("admin.common.confirm_delete", { name: name(item) }))) return;
    try {
      await del(`${base}/${item.id}`);
      toast(t("admin.common.deleted", { name: name(item) }), "ok");
      await reload();
    } catch (error) {
      reportError(error);
    }
  }

  function actions(item) {
    const buttons = [];
    if (canChange(item)) {
      buttons.push(rowButton(t("admin.common.edit"), name(item), () => open(item)));
    }
    buttons.push(...(options.extraActions?.(item) ?? []));
    if (canChange(item)) {
      buttons.push(rowButton(t("admin.common.delete"), name(item), () => remove(item), { danger: true }));
    }
    return el("div", { class: "row-actions" }, buttons);
  }

  async function reload() {
    try {
      items = await load();
      fillTable(
        table,
        items.map((item) => tableRow([...row(item), actions(item)], { "data-id": String(item.id) })),
      );
      options.after?.(items);
    } catch (error) {
      reportError(error);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!form.reportValidity()) return;
    let body;
    try {
      body = read(form, editing);
    } catch (error) {
      showError(form, error);
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const saved = editing ? await patch(`${base}/${editing.id}`, body) : await post(base, body);
      dialog.close();
      toast(t("admin.common.saved", { name: name(saved) }), "ok");
      await reload();
    } catch (error) {
      showError(form, error);
    } finally {
      submit.disabled = false;
    }
  });

  document.querySelector(options.newButton)?.addEventListener("click", () => open(null));
  reload();
  return {
    reload,
    edit: open,
    items: () => items,
  };
}

/** A refusal found before sending (e.g. text that is not JSON), shown like the API's. */
export class FormError extends Error {
  constructor(field, message) {
    super(message);
    this.name = "FormError";
    this.field = field;
  }
}

document.documentElement.dataset.adminReady = "true";
