// The maintenance page: each card's button starts its action (POST /api/v1/maintenance/{action})
// and follows the job (GET /api/v1/jobs/{id}) every half second with a progress bar, then shows
// the result summary or the failure. Clicking again while it runs is harmless: the server
// answers the running job. The last job of each action is remembered in this browser, so
// leaving the page and coming back shows it again, still running or finished.

import { t, get, post, toast, ApiError } from "./common.js";
import { el } from "./admin.js";

const POLL_MS = 500;
const MAX_BACKOFF_MS = 10000;
const STORE_PREFIX = "atende.maintenance.";
const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);

for (const card of document.querySelectorAll(".maint-card")) setup(card);
document.documentElement.dataset.maintenanceReady = "true";

function setup(card) {
  const view = {
    card,
    action: card.dataset.action,
    progress: card.querySelector(".maint-progress"),
    bar: card.querySelector(".maint-bar"),
    fill: card.querySelector(".maint-fill"),
    state: card.querySelector(".maint-state"),
    error: card.querySelector(".maint-error"),
    result: card.querySelector(".maint-result"),
    timer: null,
    misses: 0,
  };
  card.querySelector(".maint-run").addEventListener("click", () => start(view));
  const remembered = recall(view.action);
  if (remembered) poll(view, remembered);
}

async function start(view) {
  clearTimeout(view.timer);
  view.error.hidden = true;
  view.result.hidden = true;
  view.progress.hidden = false;
  view.card.setAttribute("aria-busy", "true");
  setProgress(view, null);
  view.state.textContent = t("maintenance.js.starting");
  let started;
  try {
    started = await post(`/api/v1/maintenance/${encodeURIComponent(view.action)}`);
  } catch (error) {
    view.progress.hidden = true;
    view.card.removeAttribute("aria-busy");
    view.card.dataset.state = "failed";
    showError(view, error?.message || t("common.js.request_failed"));
    return;
  }
  remember(view.action, started.job_id);
  if (started.already_running) toast(t("maintenance.js.already_running"), "info");
  show(view, started);
  if (isLive(started)) schedule(view, started.job_id, POLL_MS);
}

function schedule(view, id, delay) {
  clearTimeout(view.timer);
  view.timer = setTimeout(() => poll(view, id), delay);
}

async function poll(view, id) {
  let job;
  try {
    job = await get(`/api/v1/jobs/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) {
      // Gone, or another user's tenant in this browser: nothing to show.
      forget(view.action);
      reset(view);
      return;
    }
    view.misses += 1;
    view.state.textContent = t("maintenance.js.reconnecting");
    schedule(view, id, Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** view.misses));
    return;
  }
  view.misses = 0;
  show(view, job);
  if (isLive(job)) schedule(view, id, POLL_MS);
}

function isLive(job) {
  return job.status === "queued" || job.status === "running";
}

/** Shows a job's state on its card. */
function show(view, job) {
  view.card.dataset.state = job.status;
  view.card.dataset.jobId = String(job.id ?? job.job_id);
  if (isLive(job)) view.card.setAttribute("aria-busy", "true");
  else view.card.removeAttribute("aria-busy");
  view.error.hidden = true;
  switch (job.status) {
    case "queued":
      view.progress.hidden = false;
      setProgress(view, null);
      view.state.textContent = job.error
        ? t("maintenance.js.retrying", { attempts: job.attempts, error: job.error })
        : t("maintenance.js.queued");
      view.result.hidden = true;
      break;
    case "running": {
      view.progress.hidden = false;
      view.result.hidden = true;
      if (job.total > 0) {
        const percent = Math.min(100, Math.floor((job.progress / job.total) * 100));
        setProgress(view, percent);
        view.state.textContent = t("maintenance.js.running", {
          done: numbers.format(job.progress),
          total: numbers.format(job.total),
          percent,
        });
      } else {
        setProgress(view, null);
        view.state.textContent = t("maintenance.js.counting");
      }
      break;
    }
    case "done":
      view.progress.hidden = false;
      setProgress(view, 100);
      view.state.textContent = t("maintenance.js.done", {
        time: new Date(job.updated_at).toLocaleString(document.documentElement.lang || undefined, {
          dateStyle: "short",
          timeStyle: "short",
        }),
        took: took(job.updated_at - job.created_at),
      });
      showResult(view, job.result);
      break;
    default:
      view.progress.hidden = true;
      view.result.hidden = true;
      showError(view, t("maintenance.js.failed", { error: job.error || t("common.js.request_failed") }));
  }
}

/** `percent` null: working, amount unknown (an indeterminate bar). */
function setProgress(view, percent) {
  if (percent === null) {
    view.bar.classList.add("indeterminate");
    view.bar.removeAttribute("aria-valuenow");
    view.fill.style.width = "";
  } else {
    view.bar.classList.remove("indeterminate");
    view.bar.setAttribute("aria-valuenow", String(percent));
    view.fill.style.width = `${percent}%`;
  }
}

function showError(view, message) {
  view.error.textContent = message;
  view.error.hidden = false;
}

function reset(view) {
  view.card.dataset.state = "idle";
  view.card.removeAttribute("aria-busy");
  view.progress.hidden = true;
  view.result.hidden = true;
  view.error.hidden = true;
}

/** The job's result: counts as a list of label and number, examples in a disclosure. */
function showResult(view, result) {
  const counts = [];
  const examples = [];
  for (const [field, value] of Object.entries(result ?? {})) {
    if (value === null || value === undefined) continue;
    const label = resultLabel(view.action, field);
    if (Array.isArray(value)) {
      if (value.length > 0) examples.push(sampleList(label, value));
      continue;
    }
    const shown = typeof value === "number" ? numbers.format(value) : String(value);
    counts.push(el("div", { "data-field": field }, el("dt", { text: label }), el("dd", { text: shown })));
  }
  view.result.replaceChildren(
    el("h3", { text: t("maintenance.js.result") }),
    el("dl", { class: "maint-summary" }, counts),
    examples,
  );
  view.result.hidden = false;
}

function resultLabel(action, field) {
  const key = `maintenance.result.${action}.${field}`;
  const label = t(key);
  return label === key ? field.replaceAll("_", " ") : label;
}

/** Examples (invalid numbers, unknown identities): `{contact_id, …}` objects. */
function sampleList(label, items) {
  const lines = items.map((item) => {
    if (typeof item !== "object" || item === null) return el("li", { text: String(item) });
    const { contact_id: contact, ...rest } = item;
    const parts = Object.values(rest).filter((v) => v !== null && v !== "");
    if (contact !== undefined) parts.unshift(t("maintenance.js.contact", { id: contact }));
    return el("li", { text: parts.join(" · ") });
  });
  return el(
    "details",
    { class: "maint-samples" },
    el("summary", { text: t("maintenance.js.samples", { label, count: numbers.format(items.length) }) }),
    el("ul", {}, lines),
  );
}

function took(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return t("maintenance.js.seconds", { n: seconds });
  return t("maintenance.js.minutes", { n: numbers.format(Math.round(seconds / 60)) });
}

// The last job per action, in this browser.

function remember(action, id) {
  try {
    localStorage.setItem(STORE_PREFIX + action, String(id));
  } catch {
    // Storage off (private mode): the page just won't recall the job later.
  }
}

function recall(action) {
  try {
    const id = Number(localStorage.getItem(STORE_PREFIX + action));
    return Number.isSafeInteger(id) && id > 0 ? id : null;
  } catch {
    return null;
  }
}

function forget(action) {
  try {
    localStorage.removeItem(STORE_PREFIX + action);
  } catch {
    // See remember().
  }
}
