// Helpers of the attendance screen's modules: building elements, icons, dates in the page's
// language, and turning API refusals into sentences in that language.

import { ApiError, t } from "./common.js";

/** `el("p", {class: "x", text: "hi", onclick: f}, child…)`; null/false attributes are left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// Our own line icons (24×24, stroked by CSS).
const ICONS = {
  clock: '<circle cx="12" cy="12" r="8"/><path d="M12 7.5V12l3 2"/>',
  sent: '<path d="M5 12.5l4.5 4.5L19 7.5"/>',
  delivered: '<path d="M2.5 12.5L7 17l9.5-9.5M11 16l1 1 9.5-9.5"/>',
  failed: '<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5v5.5M12 16.5h.01"/>',
  file: '<path d="M14 3H7a2 2 0 00-2 2v14a2 2 0 002 2h10a2 2 0 002-2V8z"/><path d="M14 3v5h5"/>',
  play: '<path d="M8 5.5v13l10.5-6.5z"/>',
  pause: '<path d="M8 5.5v13M16 5.5v13"/>',
};

const iconTemplate = document.createElement("template");

/** A decorative icon (`aria-hidden`); give the meaning to its parent's label. */
export function icon(name) {
  iconTemplate.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true" class="icon icon-${name}">${ICONS[name] ?? ""}</svg>`;
  return iconTemplate.content.firstElementChild;
}

const lang = document.documentElement.lang || "pt-BR";
const timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
const shortDate = new Intl.DateTimeFormat(lang, { day: "2-digit", month: "2-digit", year: "2-digit" });
const longDate = new Intl.DateTimeFormat(lang, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

function dayStart(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Whole days between `ms` and today (0 = today, 1 = yesterday), in local time. */
export function daysAgo(ms) {
  return Math.round((dayStart(Date.now()) - dayStart(ms)) / 86400000);
}

export function sameDay(a, b) {
  return dayStart(a) === dayStart(b);
}

export const clockTime = (ms) => timeFormat.format(new Date(ms));

/** A list row's time: the hour today, "yesterday", else the date. */
export function listTime(ms) {
  if (!ms) return "";
  const ago = daysAgo(ms);
  if (ago <= 0) return clockTime(ms);
  if (ago === 1) return t("attendance.chat.yesterday");
  return shortDate.format(new Date(ms));
}

/** A day separator's words. */
export function dayLabel(ms) {
  const ago = daysAgo(ms);
  if (ago <= 0) return t("attendance.chat.today");
  if (ago === 1) return t("attendance.chat.yesterday");
  return longDate.format(new Date(ms));
}

/** A fresh idempotency key (`crypto.randomUUID` exists only on secure origins). */
export function newKey() {
  if (crypto.randomUUID) return `panel:${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `panel:${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// The server's refusals are English sentences for integrators; the panel says them in the
// user's language. Known reasons are recognised by their wording (SPEC §3 lifecycle, §7 replies).
const REASONS = [
  ["only a pending ticket can be accepted", "attendance.reason.accept_pending"],
  ["only an agent can accept", "attendance.reason.only_agent"],
  ["only an open ticket can be returned", "attendance.reason.return_open"],
  ["a closed ticket cannot be transferred", "attendance.reason.transfer_closed"],
  ["the ticket is already there", "attendance.reason.transfer_same"],
  ["give the queue_id, the user_id or both", "attendance.transfer.need_target"],
  ["pausing is disabled", "attendance.reason.pause_disabled"],
  ["only an open ticket can be paused", "attendance.reason.pause_open"],
  ["only a paused ticket can be resumed", "attendance.reason.resume_paused"],
  ["without an owner cannot be resumed", "attendance.reason.resume_no_owner"],
  ["the ticket is already closed", "attendance.reason.already_closed"],
  ["a demand is required to close", "attendance.close.demand_required"],
  ["accept the ticket before closing it", "attendance.reason.accept_before_close"],
  ["only a closed ticket can be reopened", "attendance.reason.reopen_closed"],
  ["accept the ticket before replying", "attendance.reason.accept_first"],
  ["the ticket is closed: reopen it", "attendance.reason.ticket_closed"],
  ["the signature is enforced", "attendance.reason.signature_enforced"],
  ["only the ticket's owner, an administrator or a supervisor", "attendance.reason.owner_only"],
  ["is not accepted; send one of", "attendance.reason.file_type"],
  ["the content is not a", "attendance.reason.file_type"],
];

const CODES = {
  window_closed: "attendance.error.window_closed",
  spy_disabled: "attendance.error.spy_disabled",
  payload_too_large: "attendance.error.too_large",
  not_found: "attendance.error.not_found",
  unknown_reference: "attendance.error.not_found",
  forbidden: "attendance.error.forbidden",
  csrf: "attendance.error.csrf",
  rate_limited: "attendance.error.rate_limited",
};

const FIELDS = {
  body: "attendance.composer.message",
  file: "attendance.composer.attach",
  demand_id: "attendance.close.demand",
  queue_id: "attendance.transfer.queue",
  user_id: "attendance.transfer.user",
  note: "attendance.transfer.note",
  reason: "attendance.pause.reason",
};

/** A refusal of the API as a sentence in the page's language. */
export function explain(error) {
  if (!(error instanceof ApiError)) return error?.message || t("common.js.request_failed");
  // common.js already words these in the page's language.
  if (error.status === 0 || error.status === 401) return error.message;
  const reason = REASONS.find(([words]) => error.message.includes(words));
  if (reason) return t(reason[1]);
  const key = CODES[error.code];
  if (key) return t(key);
  if (error.code === "validation_failed") {
    const field = FIELDS[error.field];
    const detail = error.message.replace(/^[\w.]+:\s*/, "");
    return t("attendance.error.validation", { field: field ? t(field) : (error.field ?? "?"), detail });
  }
  if (error.code === "invalid_state" || error.code === "conflict") {
    return t("attendance.error.invalid_state", { detail: error.message });
  }
  return error.message || t("common.js.request_failed");
}
