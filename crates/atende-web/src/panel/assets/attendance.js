// The attendance screen: the Private / Groups and status tabs with their unread counters, search
// and queue filter, the ticket list with infinite scroll, live updates over the event socket
// (a ticket enters, moves or leaves the list without a reload) and the new-message sound. The
// first page arrives rendered in the HTML; this module reads it back and takes over.

import { connectLive, get, t, toast } from "./common.js";
import { Chat } from "./attendance-chat.js";
import { el, explain, listTime } from "./attendance-util.js";

const config = JSON.parse(document.getElementById("attendance-config")?.textContent || "{}");
const settings = config.settings;
const listEl = document.getElementById("ticket-list");
const scroller = document.getElementById("list-scroll");
const emptyEl = document.getElementById("list-empty");
const moreEl = document.getElementById("list-more");
const searchInput = document.getElementById("ticket-search");
const queueSelect = document.getElementById("queue-filter");
const statusTabs = document.getElementById("status-tabs");

const view = {
  tab: config.tab,
  closedGroups: config.closed_groups,
  queueId: config.queue_id,
  search: config.search,
};
let cursor = config.next_cursor;
let counts = config.counts;
/** id → the row's model (what the list needs of a ticket). */
const rows = new Map();
/** Tickets being fetched because a live frame said they belong in the list. */
const arriving = new Set();
let listRequest = null;

const chat = new Chat(config, {
  ticketChanged: (ticket) => {
    applyTicket(ticket);
    refreshCounts();
  },
  accepted: () => {
    if (view.tab === "pending" || view.tab === "chatbot") show("open");
  },
  closed: (id) => {
    select(null);
    syncAddress();
    // Keyboard users land back on the ticket they left.
    listEl.querySelector(`li[data-id="${id}"] a`)?.focus();
  },
});

// ---- the list's model and rows ----

const sortKey = (ticket) =>
  settings.order_by_last_message ? (ticket.last_inbound_at ?? ticket.created_at) : ticket.updated_at;

/** The row model of a ticket as the API shows it (a list item, a detail, or a live ticket). */
function modelOf(ticket, previous) {
  const contact = ticket.contact ?? null;
  return {
    id: ticket.id,
    status: ticket.status,
    group: ticket.is_group,
    bot: ticket.bot_active ?? (ticket.bot_flow_id != null || Boolean(ticket.integration_active)),
    queue: ticket.queue_id ?? null,
    owner: ticket.owner_id ?? null,
    contact: contact ? contact.id : (ticket.contact_id ?? previous?.contact),
    connection: ticket.connection_id,
    unread: ticket.unread ?? 0,
    sort: sortKey(ticket),
    time: ticket.last_message_at ?? ticket.updated_at,
    name: contact ? contact.name || contact.phone || "" : (previous?.name ?? ""),
    preview: (ticket.last_message ?? "").slice(0, 120),
  };
}

/** A server-rendered row read back into its model. */
function modelOfRow(li) {
  const d = li.dataset;
  const number = (v) => (v === "" || v === undefined ? null : Number(v));
  return {
    id: Number(d.id),
    status: d.status,
    group: d.group === "true",
    bot: d.bot === "true",
    queue: number(d.queue),
    owner: number(d.owner),
    contact: number(d.contact),
    connection: number(d.connection),
    unread: Number(d.unread),
    sort: Number(d.sort),
    time: Number(li.querySelector("time")?.dataset.ms),
    name: li.querySelector(".ticket-name")?.textContent ?? "",
    preview: li.querySelector(".ticket-preview")?.textContent ?? "",
  };
}

/** A queue tag's colour comes in `data-color`; the CSP allows no `style` attribute, so it is
 * set here (only `#rgb` / `#rrggbb`). */
function paintQueueTag(tag) {
  const color = tag.dataset.color ?? "";
  if (/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(color)) tag.style.setProperty("--queue", color);
  return tag;
}

/** Same markup as `templates/attendance_row.html`. */
function renderRow(m) {
  const queue = config.queues.find((q) => q.id === m.queue);
  const tags = el("span", { class: "ticket-tags" });
  if (queue) tags.append(paintQueueTag(el("span", { class: "queue-tag", dataset: { color: queue.color }, text: queue.name })));
  if (m.status === "paused") tags.append(el("span", { class: "status-tag", text: t("attendance.list.paused") }));
  if (m.bot) tags.append(el("span", { class: "status-tag", text: t("attendance.list.bot") }));
  const li = el(
    "li",
    {
      class: `ticket${m.unread > 0 ? " has-unread" : ""}`,
      dataset: {
        id: m.id,
        status: m.status,
        group: m.group,
        bot: m.bot,
        queue: m.queue ?? "",
        owner: m.owner ?? "",
        contact: m.contact ?? "",
        connection: m.connection ?? "",
        unread: m.unread,
        sort: m.sort,
      },
    },
    el(
      "a",
      { class: "ticket-link", href: `/?ticket=${m.id}` },
      el("span", { class: "avatar", "aria-hidden": "true", text: m.name.charAt(0).toUpperCase() }),
      el(
        "span",
        { class: "ticket-main" },
        el("span", { class: "ticket-line" }, el("span", { class: "ticket-name", text: m.name }), el("time", { class: "ticket-time", dataset: { ms: m.time }, text: listTime(m.time) })),
        el("span", { class: "ticket-line" }, el("span", { class: "ticket-preview", text: m.preview }), el("span", { class: "unread-badge", hidden: m.unread === 0, text: m.unread })),
        tags,
      ),
    ),
  );
  if (m.id === chat.id) li.classList.add("selected");
  return li;
}

/** Whether a ticket belongs in the list on screen (the tab scopes of `ticket_views`). */
function inView(m) {
  if (view.queueId !== null && m.queue !== view.queueId) return false;
  switch (view.tab) {
    case "open":
      return !m.group && (m.status === "open" || m.status === "paused");
    case "pending":
      return !m.group && m.status === "pending" && !(settings.chatbot_tab && m.bot);
    case "chatbot":
      return !m.group && m.status === "pending" && m.bot;
    case "closed":
      return !m.group && m.status === "closed";
    case "groups":
      return m.group && (view.closedGroups ? m.status === "closed" : m.status !== "closed");
    default:
      return false;
  }
}

const before = (a, b) => a.sort > b.sort || (a.sort === b.sort && a.id > b.id);

/** Puts a model's row in its place (newest first), or takes it out when it no longer fits. */
function place(m) {
  const old = listEl.querySelector(`li[data-id="${m.id}"]`);
  const last = [...rows.values()].filter((r) => r.id !== m.id).reduce((low, r) => (!low || before(low, r) ? r : low), null);
  // Past the last loaded row with more pages to come, the row belongs to a later page.
  if (cursor && last && before(last, m)) {
    removeRow(m.id);
    return;
  }
  rows.set(m.id, m);
  const li = renderRow(m);
  old?.remove();
  const next = [...listEl.children].find((other) => before(m, rows.get(Number(other.dataset.id)) ?? m));
  listEl.insertBefore(li, next ?? null);
  emptyEl.hidden = true;
}

function removeRow(id) {
  rows.delete(id);
  listEl.querySelector(`li[data-id="${id}"]`)?.remove();
  emptyEl.hidden = rows.size > 0 || listRequest !== null;
}

/** A live ticket frame: update, move, add or drop its row. */
function applyTicket(ticket) {
  const previous = rows.get(ticket.id);
  const m = modelOf(ticket, previous);
  if (!inView(m)) {
    if (previous) removeRow(ticket.id);
    return;
  }
  if (previous) {
    place(m);
    return;
  }
  // A search list cannot tell whether a new ticket matches: it waits for the next search.
  if (view.search || arriving.has(ticket.id)) return;
  arriving.add(ticket.id);
  get(`/api/v1/tickets/${ticket.id}`)
    .then((detail) => {
      const fresh = modelOf(detail);
      if (inView(fresh)) place(fresh);
    })
    .catch(() => {})
    .finally(() => arriving.delete(ticket.id));
}

// ---- loading pages ----

function listQuery(withCursor) {
  const params = new URLSearchParams({ tab: view.tab });
  if (view.closedGroups) params.set("status", "closed");
  if (view.queueId !== null) params.set("queue_id", String(view.queueId));
  if (view.search) params.set("search", view.search);
  if (withCursor && cursor) params.set("cursor", cursor);
  return params;
}

async function loadPage(reset) {
  if (!reset && (!cursor || listRequest)) return;
  listRequest?.abort();
  const request = (listRequest = new AbortController());
  if (reset) cursor = null;
  moreEl.textContent = t("attendance.list.loading");
  try {
    const params = listQuery(!reset);
    // A first page brings the tab counters along: one request instead of two.
    if (reset && settings.tab_counters) params.set("with_counts", "true");
    const page = await get(`/api/v1/tickets?${params}`, { signal: request.signal });
    if (reset) {
      rows.clear();
      listEl.replaceChildren();
    }
    cursor = page.next_cursor;
    if (page.counts) {
      counts = page.counts;
      renderCounters();
    }
    for (const item of page.tickets) {
      if (rows.has(item.id)) continue;
      const m = modelOf(item);
      rows.set(m.id, m);
      listEl.append(renderRow(m));
    }
    listRequest = null;
    emptyEl.hidden = rows.size > 0;
    moreEl.textContent = "";
    listEl.dataset.loaded = String(Date.now());
  } catch (error) {
    if (error?.name === "AbortError") return;
    listRequest = null;
    moreEl.textContent = "";
    toast(explain(error));
  }
}

// Infinite scroll: the next page when the end of the list comes into view.
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadPage(false);
}, { root: scroller, rootMargin: "200px" }).observe(moreEl);

// ---- tabs, filters and the address ----

function syncAddress() {
  const params = listQuery(false);
  if (chat.id !== null) params.set("ticket", String(chat.id));
  history.replaceState(null, "", `/?${params}`);
}

function counterText(value) {
  if (!counts.enabled || !value) return "";
  return value >= counts.cap ? `${counts.cap}+` : String(value);
}

function renderCounters() {
  for (const badge of document.querySelectorAll("[data-count]")) {
    const text = counterText(counts[badge.dataset.count]);
    badge.textContent = text;
    badge.hidden = text === "";
  }
}

/** The status tabs of the top tab on screen. */
function renderStatusTabs() {
  const tabs = view.tab === "groups"
    ? [
        ["groups", t("attendance.tab.active"), null, !view.closedGroups],
        ["groups-closed", t("attendance.tab.closed"), null, view.closedGroups],
      ]
    : [
        ["open", t("attendance.tab.open"), "open"],
        ["pending", t("attendance.tab.pending"), "pending"],
        ...(settings.chatbot_tab ? [["chatbot", t("attendance.tab.chatbot"), "chatbot"]] : []),
        ["closed", t("attendance.tab.closed"), null],
      ];
  statusTabs.replaceChildren(
    ...tabs.map(([name, label, counter, current]) => {
      const selected = current ?? name === view.tab;
      const href = name === "groups-closed" ? "/?tab=groups&status=closed" : `/?tab=${name}`;
      return el(
        "a",
        { href, dataset: { view: name }, "aria-current": selected ? "page" : null },
        label,
        counter ? " " : null,
        counter ? el("span", { class: "counter", dataset: { count: counter } }) : null,
      );
    }),
  );
  for (const link of document.querySelectorAll(".top-tabs a")) {
    const groups = link.dataset.view === "groups";
    link.toggleAttribute("aria-current", groups === (view.tab === "groups"));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  renderCounters();
}

function show(name) {
  if (name === "private") name = "open";
  view.closedGroups = name === "groups-closed";
  view.tab = name === "groups-closed" ? "groups" : name;
  renderStatusTabs();
  syncAddress();
  loadPage(true);
}

for (const bar of document.querySelectorAll(".top-tabs, .status-tabs")) {
  bar.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-view]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    show(link.dataset.view);
  });
}

document.getElementById("ticket-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  view.search = searchInput.value.trim();
  syncAddress();
  loadPage(true);
});
let searchTimer = null;
searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    if (searchInput.value.trim() === view.search) return;
    view.search = searchInput.value.trim();
    syncAddress();
    loadPage(true);
  }, 350);
});
queueSelect.addEventListener("change", () => {
  view.queueId = queueSelect.value ? Number(queueSelect.value) : null;
  syncAddress();
  loadPage(true);
});

let countsTimer = null;
/** Counters are read again shortly after ticket frames (one request for a burst of them). */
function refreshCounts() {
  if (!settings.tab_counters || countsTimer) return;
  countsTimer = setTimeout(async () => {
    countsTimer = null;
    try {
      counts = await get("/api/v1/tickets/counts");
      renderCounters();
    } catch {
      // The next frame tries again.
    }
  }, 300);
}

// ---- opening chats ----

function select(id) {
  for (const li of listEl.querySelectorAll("li.selected")) li.classList.remove("selected");
  listEl.querySelector(`li[data-id="${id}"]`)?.classList.add("selected");
}

function openChat(id) {
  select(id);
  chat.open(id).finally(syncAddress);
  syncAddress();
  const row = rows.get(id);
  if (row && row.unread > 0 && row.owner === config.me.id) {
    row.unread = 0;
    place(row);
    select(id);
  }
}

listEl.addEventListener("click", (event) => {
  const link = event.target.closest("a.ticket-link");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  openChat(Number(link.closest("li").dataset.id));
});

// Arrow keys move between tickets.
listEl.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const current = event.target.closest("li");
  const next = event.key === "ArrowDown" ? current?.nextElementSibling : current?.previousElementSibling;
  if (next) {
    event.preventDefault();
    next.querySelector("a")?.focus();
  }
});

// ---- the new-message sound ----

let sound = null;
let lastSound = 0;

function ring(message) {
  if (!settings.sound_notifications) return;
  // Not for the chat the agent is reading right now.
  if (message.ticket_id === chat.id && document.hasFocus()) return;
  const now = Date.now();
  if (now - lastSound < 1500) return;
  lastSound = now;
  sound ??= new Audio(config.sound_url);
  sound.currentTime = 0;
  document.body.dataset.sounds = String(Number(document.body.dataset.sounds ?? 0) + 1);
  sound.play().catch(() => {
    // Browsers refuse sound before the first click on the page; nothing to do about it.
  });
}

// ---- connection chips ----

/** Shows one connection's status on its chip (a live `connection.status` frame or a read). */
function showConnection(id, status) {
  const chip = document.querySelector(`.chip[data-connection="${id}"]`);
  if (!chip) return;
  const label = t(`attendance.connection.${status}`);
  chip.className = `chip chip-${status}`;
  chip.title = label;
  const words = chip.querySelector(".sr-only");
  if (words) words.textContent = `: ${label}`;
}

/** Changes arrive live; after a reconnect the statuses are read again in case one was missed. */
async function refreshConnections() {
  try {
    for (const connection of await get("/api/v1/connections")) showConnection(connection.id, connection.status);
  } catch {
    // Kept as they were; the next reconnect reads them again.
  }
}

// ---- live updates ----

const liveStatus = document.getElementById("live-status");

connectLive({
  onHello(_hello, first) {
    if (!first) refreshConnections();
  },
  onStatus(state) {
    liveStatus.dataset.state = state;
    liveStatus.textContent = t(state === "online" ? "common.js.live_online" : "common.js.live_offline");
  },
  onResync() {
    loadPage(true);
    refreshCounts();
    chat.reload();
  },
  onEvent(frame) {
    switch (frame.type) {
      case "ticket.created":
      case "ticket.updated":
      case "ticket.status_changed":
        applyTicket(frame.data);
        chat.onTicket(frame.data);
        refreshCounts();
        break;
      case "ticket.hidden":
        removeRow(frame.data.ticket_id);
        chat.onHidden(frame.data.ticket_id);
        refreshCounts();
        break;
      case "message.created":
        chat.onMessage(frame.data, true);
        // A body we may not read is a contact writing on a pending ticket.
        if (frame.data.redacted || frame.data.direction === "in") ring(frame.data);
        break;
      case "message.updated":
        chat.onMessage(frame.data, false);
        break;
      case "settings.changed":
        loadPage(true);
        refreshCounts();
        break;
      case "connection.status":
        showConnection(frame.data.connection_id, frame.data.status);
        break;
      default:
    }
  },
});

// ---- start ----

for (const li of listEl.children) rows.set(Number(li.dataset.id), modelOfRow(li));
for (const time of listEl.querySelectorAll("time[data-ms]")) time.textContent = listTime(Number(time.dataset.ms));
for (const tag of listEl.querySelectorAll(".queue-tag[data-color]")) paintQueueTag(tag);
const asked = Number(new URLSearchParams(location.search).get("ticket"));
if (asked > 0) openChat(asked);
document.getElementById("attendance").dataset.ready = "true";
