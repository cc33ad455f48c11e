// The dashboard: draws the figures the page carries (#dashboard-data, the answer of
// GET /api/v1/dashboard) as summary tiles, charts (charts.js) and data tables; a filter change
// asks the API again and redraws without a reload (the URL follows, so a reload or a shared link
// shows the same), and the figures refresh every minute while the tab is visible.

import { t, get, reportError } from "./common.js";
import { el } from "./admin.js";
import { timeChart, barChart, donutChart, durationTicks } from "./charts.js";

const REFRESH_MS = 60000;
const lang = document.documentElement.lang || undefined;
const numbers = new Intl.NumberFormat(lang);
const count = (n) => numbers.format(n ?? 0);
const shortDay = new Intl.DateTimeFormat(lang, { timeZone: "UTC", day: "2-digit", month: "2-digit" });
const longDay = new Intl.DateTimeFormat(lang, {
  timeZone: "UTC",
  weekday: "short",
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
});
const fullDay = new Intl.DateTimeFormat(lang, { timeZone: "UTC", dateStyle: "short" });

const root = document.getElementById("dashboard");
const form = document.getElementById("dash-filters");
let request = null;

const initial = readInitial();
if (initial) draw(initial);
wireFilters();
setInterval(() => {
  if (document.visibilityState === "visible") load({ quiet: true });
}, REFRESH_MS);
document.documentElement.dataset.dashboardReady = "true";

function readInitial() {
  try {
    return JSON.parse(document.getElementById("dashboard-data")?.textContent || "null");
  } catch {
    return null;
  }
}

// ---- filters ---------------------------------------------------------------------------------

function wireFilters() {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    checkPeriod();
    if (form.reportValidity()) load();
  });
  for (const select of form.querySelectorAll("select")) select.addEventListener("change", () => load());
  for (const input of form.querySelectorAll('input[type="date"]')) {
    input.addEventListener("change", () => {
      checkPeriod();
      if (form.checkValidity()) load();
    });
  }
  for (const button of form.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => {
      const days = Number(button.dataset.days);
      const today = new Date();
      const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
      form.elements.from.value = isoDay(from);
      form.elements.to.value = isoDay(today);
      checkPeriod();
      load();
    });
  }
}

/** The server's period rules, said in the page's language before asking it. */
function checkPeriod() {
  const { from, to } = form.elements;
  const days = (day(to.value) - day(from.value)) / 86400000 + 1;
  const most = Number(form.dataset.maxDays);
  from.setCustomValidity(from.value && to.value && from.value > to.value ? t("dashboard.js.from_after_to") : "");
  to.setCustomValidity(days > most ? t("dashboard.js.too_long", { days: most }) : "");
}

/** `YYYY-MM-DD` of a local date. */
function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function filterQuery() {
  const query = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim() !== "") query.set(name, String(value));
  }
  return query.toString();
}

async function load({ quiet = false } = {}) {
  const query = filterQuery();
  request?.abort();
  const controller = new AbortController();
  request = controller;
  if (!quiet) root.setAttribute("aria-busy", "true");
  try {
    const figures = await get(`/api/v1/dashboard?${query}`, { signal: controller.signal });
    history.replaceState(null, "", `/dashboard${query ? `?${query}` : ""}`);
    for (const notice of document.querySelectorAll(".dash-notice")) notice.remove();
    draw(figures);
  } catch (error) {
    if (!quiet) reportError(error);
  } finally {
    if (request === controller) {
      request = null;
      root.setAttribute("aria-busy", "false");
    }
  }
}

// ---- drawing ---------------------------------------------------------------------------------

function draw(figures) {
  document.getElementById("dash-zone").textContent = t("dashboard.js.timezone", { zone: figures.timezone });
  drawTiles(figures);
  drawPerDay(figures);
  drawStatus(figures.by_status);
  for (const measure of ["first_response", "resolution"]) {
    drawTimes(measure, "queue", figures[measure], figures[measure].by_queue);
    drawTimes(measure, "agent", figures[measure], figures[measure].by_agent);
  }
}

function drawTiles(figures) {
  const opened = figures.per_day.reduce((sum, day) => sum + day.opened, 0);
  const closed = figures.per_day.reduce((sum, day) => sum + day.closed, 0);
  const tile = (id, label, value, sub) =>
    el(
      "div",
      { class: "tile", id },
      el("span", { class: "tile-label", text: label }),
      el("strong", { class: "tile-value", text: value }),
      sub ? el("span", { class: "tile-sub", text: sub }) : null,
    );
  const median = (stats) =>
    stats.median_seconds === null ? null : t("dashboard.js.median_of", { value: duration(stats.median_seconds) });
  document
    .getElementById("dash-tiles")
    .replaceChildren(
      tile("tile-opened", t("dashboard.js.total_opened"), count(opened)),
      tile("tile-closed", t("dashboard.js.total_closed"), count(closed)),
      tile(
        "tile-first-response",
        t("dashboard.js.avg_first_response"),
        duration(figures.first_response.overall.average_seconds),
        median(figures.first_response.overall),
      ),
      tile(
        "tile-resolution",
        t("dashboard.js.avg_resolution"),
        duration(figures.resolution.overall.average_seconds),
        median(figures.resolution.overall),
      ),
    );
}

function day(text) {
  const [y, m, d] = text.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d));
}

function drawPerDay(figures) {
  const days = figures.per_day;
  const opened = days.map((d) => d.opened);
  const closed = days.map((d) => d.closed);
  const from = fullDay.format(day(figures.from));
  const to = fullDay.format(day(figures.to));
  const totalOpened = opened.reduce((a, b) => a + b, 0);
  const totalClosed = closed.reduce((a, b) => a + b, 0);
  let label;
  if (totalOpened + totalClosed === 0) {
    label = t("dashboard.js.per_day_empty", { from, to });
  } else {
    const peak = days.reduce((best, d) => (d.opened > best.opened ? d : best), days[0]);
    label = t("dashboard.js.per_day_summary", {
      from,
      to,
      opened: count(totalOpened),
      closed: count(totalClosed),
      peak: fullDay.format(day(peak.date)),
      peak_count: count(peak.opened),
    });
  }
  timeChart(document.getElementById("chart-per-day"), {
    labels: days.map((d) => d.date),
    tick: (d) => shortDay.format(day(d)),
    long: (d) => longDay.format(day(d)),
    series: [
      { name: t("dashboard.js.opened"), values: opened, cls: "c-opened" },
      { name: t("dashboard.js.closed"), values: closed, cls: "c-closed" },
    ],
    label,
    format: count,
    empty: t("dashboard.js.no_data"),
  });
  document.getElementById("table-per-day").replaceChildren(
    table({
      caption: document.getElementById("per-day-title").textContent,
      head: [t("dashboard.js.date"), t("dashboard.js.opened"), t("dashboard.js.closed")],
      rows: days.map((d) => [longDay.format(day(d.date)), count(d.opened), count(d.closed)]),
      foot: [t("dashboard.js.overall"), count(totalOpened), count(totalClosed)],
    }),
  );
}

function drawStatus(byStatus) {
  const items = ["pending", "open", "paused", "closed"].map((status) => ({
    name: t(`dashboard.status.${status}`),
    value: byStatus[status] ?? 0,
    cls: `s-${status}`,
  }));
  donutChart(document.getElementById("chart-status"), {
    items,
    label: t("dashboard.js.status_summary", {
      list: items.map((item) => `${item.name} ${count(item.value)}`).join(", "),
    }),
    format: count,
    center: t("dashboard.js.tickets"),
    empty: t("dashboard.js.no_data"),
  });
  document.getElementById("table-status").replaceChildren(
    table({
      caption: document.getElementById("status-title").textContent,
      head: [t("dashboard.js.status"), t("dashboard.js.tickets")],
      rows: items.map((item) => [item.name, count(item.value)]),
    }),
  );
}

/** One measure (first response, resolution) per queue or per agent: bars and a table. */
function drawTimes(measure, group, figures, entries) {
  const unnamed = group === "queue" ? t("dashboard.js.no_queue") : t("dashboard.js.no_agent");
  const names = entries.map((entry) => entry.name ?? unnamed);
  const section = document.querySelector(`.dash-times[data-measure="${measure}"]`);
  const title = section.querySelector("h2").textContent;
  const groupTitle = document.getElementById(`chart-${measure}-${group}`).previousElementSibling.textContent;
  const stats = (entry) => ({
    name: entry.name ?? unnamed,
    average: duration(entry.average_seconds),
    median: duration(entry.median_seconds),
    p90: duration(entry.p90_seconds),
  });
  barChart(document.getElementById(`chart-${measure}-${group}`), {
    categories: names,
    series: [
      { name: t("dashboard.js.average"), values: entries.map((e) => e.average_seconds), cls: "c-average" },
      { name: t("dashboard.js.median"), values: entries.map((e) => e.median_seconds), cls: "c-median" },
      { name: t("dashboard.js.p90"), values: entries.map((e) => e.p90_seconds), cls: "c-p90" },
    ],
    label: t("dashboard.js.times_summary", {
      title: title.toLowerCase(),
      group: groupTitle.toLowerCase(),
      list: entries.map((entry) => t("dashboard.js.times_item", stats(entry))).join("; "),
    }),
    format: duration,
    ticks: durationTicks,
    empty: t("dashboard.js.no_data"),
  });
  const row = (entry) => {
    const s = stats(entry);
    return [s.name, count(entry.count), s.average, s.median, s.p90];
  };
  document.getElementById(`table-${measure}-${group}`).replaceChildren(
    entries.length === 0
      ? ""
      : table({
          caption: `${title} — ${groupTitle}`,
          head: [
            group === "queue" ? t("dashboard.js.queue") : t("dashboard.js.agent"),
            t("dashboard.js.count"),
            t("dashboard.js.average"),
            t("dashboard.js.median"),
            t("dashboard.js.p90"),
          ],
          rows: entries.map(row),
          foot: row({ ...figures.overall, name: t("dashboard.js.overall") }),
        }),
  );
}

/** A data table: the first column names the row, the others are numbers. */
function table({ caption, head, rows, foot }) {
  const cells = (values, first) =>
    values.map((value, i) =>
      i === 0 ? el(first, first === "th" ? { scope: "row", text: value } : { text: value }) : el("td", { class: "num", text: value }),
    );
  return el(
    "table",
    { class: "data-table" },
    el("caption", { class: "sr-only", text: caption }),
    el("thead", {}, el("tr", {}, head.map((text, i) => el("th", { scope: "col", class: i ? "num" : null, text })))),
    el("tbody", {}, rows.map((values) => el("tr", {}, cells(values, "th")))),
    foot ? el("tfoot", {}, el("tr", {}, cells(foot, "th"))) : null,
  );
}

// ---- durations -------------------------------------------------------------------------------

function unit(name, n) {
  return t(`dashboard.js.${name}`, { n: numbers.format(n) });
}

/** Seconds as people say them: "< 1 s", "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"; null → "—". */
function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds > 0 && seconds < 0.5) return t("dashboard.js.under_second");
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return unit("second", s);
  if (s < 600) {
    const rest = s % 60;
    const minutes = unit("minute", Math.floor(s / 60));
    return rest ? `${minutes} ${unit("second", rest)}` : minutes;
  }
  const totalMinutes = Math.round(s / 60);
  if (totalMinutes < 60) return unit("minute", totalMinutes);
  if (totalMinutes < 1440) {
    const rest = totalMinutes % 60;
    const hours = unit("hour", Math.floor(totalMinutes / 60));
    return rest ? `${hours} ${unit("minute", rest)}` : hours;
  }
  const totalHours = Math.round(s / 3600);
  const rest = totalHours % 24;
  const days = unit("day", Math.floor(totalHours / 24));
  return rest ? `${days} ${unit("hour", rest)}` : days;
}
