// The chat view: a ticket's history (newest page first, older pages as the agent scrolls up,
// day separators, the contact's earlier tickets with `show_message_history`), delivery statuses
// with resend, the composer, and the ticket commands (accept, return, transfer, pause, resume,
// close with a demand, reopen). Live frames reach it through `onTicket`, `onMessage`, `onHidden`.

import { ApiError, get, post, t, toast } from "./common.js";
import { Composer } from "./attendance-composer.js";
import { hasFile, mediaElement } from "./attendance-media.js";
import { clockTime, dayLabel, el, explain, icon, newKey, sameDay } from "./attendance-util.js";

/**
 * The template picker is for WhatsApp Cloud API tickets only, so its code loads the first time
 * such a ticket opens, not with the page.
 */
class LazyTemplates {
  constructor(options) {
    this.options = options;
    this.button = document.getElementById("template-button");
    // Connection id → its kind (a promise), read once per page.
    this.kinds = new Map();
    this.picker = null;
    this.ticket = null;
  }

  kindOf(id) {
    if (!this.kinds.has(id)) {
      const kind = get(`/api/v1/connections/${id}`).then((c) => c.kind, () => {
        this.kinds.delete(id);
        return null;
      });
      this.kinds.set(id, kind);
    }
    return this.kinds.get(id);
  }

  async setTicket(ticket) {
    this.ticket = ticket;
    if (!this.button) return;
    const kind = ticket?.connection_id ? await this.kindOf(ticket.connection_id) : null;
    if (this.ticket !== ticket) return;
    if (kind !== "whatsapp_cloud") {
      this.button.hidden = true;
      if (this.picker) (await this.picker).setTicket(null);
      return;
    }
    this.picker ??= import("./attendance-templates.js").then(({ TemplatePicker }) => new TemplatePicker(this.options));
    const picker = await this.picker;
    if (this.ticket === ticket) picker.setTicket(ticket);
  }
}

const STATUS_ICONS = { queued: "clock", sending: "clock", sent: "sent", delivered: "delivered", read: "delivered", failed: "failed" };
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/g;

/** Text with its web addresses as links (opened in a new tab). */
function linkified(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    parts.push(text.slice(last, match.index));
    parts.push(el("a", { href: match[0], target: "_blank", rel: "noopener noreferrer", text: match[0] }));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

export class Chat {
  /**
   * `hooks.ticketChanged(ticket)` after a command answered the new ticket; `hooks.closed(id)`
   * when the view of ticket `id` closes; `hooks.accepted()` after this agent accepted a ticket.
   */
  constructor(config, hooks) {
    this.config = config;
    this.settings = config.settings;
    this.me = config.me;
    this.hooks = hooks;
    this.root = document.getElementById("chat");
    this.empty = document.getElementById("chat-empty");
    this.list = document.getElementById("messages");
    this.notice = document.getElementById("chat-notice");
    this.newBelow = document.getElementById("new-below");
    this.id = null;
    this.ticket = null;
    this.contact = null;
    this.cursor = null;
    this.loadingOlder = false;
    this.rows = new Map();
    this.users = null;
    this.demands = null;
    this.composer = new Composer({ config, send: (message) => this.send(message) });
    this.templates = new LazyTemplates({ sent: (message) => this.showSent(message) });
    this.wire();
  }

  wire() {
    document.getElementById("chat-back").addEventListener("click", () => this.close());
    for (const button of this.root.querySelectorAll("[data-action]")) {
      button.addEventListener("click", () => this.command(button.dataset.action));
    }
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < 120) this.loadOlder();
      if (this.nearBottom()) this.newBelow.hidden = true;
    });
    this.newBelow.addEventListener("click", () => this.scrollToBottom());
    for (const dialog of document.querySelectorAll("dialog.dialog")) {
      dialog.querySelector("[data-cancel]")?.addEventListener("click", () => dialog.close());
    }
    document.getElementById("transfer-form").addEventListener("submit", (event) => this.submitTransfer(event));
    document.getElementById("close-form").addEventListener("submit", (event) => this.submitClose(event));
    document.getElementById("pause-form")?.addEventListener("submit", (event) => this.submitPause(event));
    const pane = document.getElementById("chat-pane");
    pane.addEventListener("dragover", (event) => {
      if (this.canReply() && event.dataTransfer?.types.includes("Files")) event.preventDefault();
    });
    pane.addEventListener("drop", (event) => {
      const file = event.dataTransfer?.files?.[0];
      if (file && this.canReply()) {
        event.preventDefault();
        this.composer.attach(file);
      }
    });
  }

  // ---- opening and closing ----

  async open(id) {
    this.abort?.abort();
    const abort = (this.abort = new AbortController());
    this.id = id;
    this.ticket = null;
    this.cursor = null;
    this.rows.clear();
    this.list.replaceChildren();
    this.newBelow.hidden = true;
    this.root.hidden = false;
    this.empty.hidden = true;
    document.getElementById("attendance").classList.add("chat-open");
    this.setNotice(t("attendance.chat.loading"));
    this.composer.setTicket(id);
    try {
      const detail = await get(`/api/v1/tickets/${id}`, { signal: abort.signal });
      if (this.id !== id) return;
      this.contact = detail.contact;
      this.access = detail.message_access;
      this.setTicket(detail);
      if (this.access !== "none") await this.loadOlder(true);
      this.markRead();
    } catch (error) {
      if (error?.name === "AbortError" || this.id !== id) return;
      toast(explain(error));
      if (error instanceof ApiError && error.status === 404) this.close();
    }
  }

  close() {
    this.abort?.abort();
    const closed = this.id;
    this.id = null;
    this.ticket = null;
    this.root.hidden = true;
    this.empty.hidden = false;
    document.getElementById("attendance").classList.remove("chat-open");
    this.hooks.closed?.(closed);
  }

  /** Reads everything again (after the live socket lost events). */
  reload() {
    if (this.id !== null) this.open(this.id);
  }

  // ---- the ticket ----

  setTicket(ticket) {
    this.ticket = { ...this.ticket, ...ticket };
    const current = this.ticket;
    const contact = this.contact ?? {};
    const name = contact.name || contact.phone || `#${current.id}`;
    document.getElementById("chat-title").textContent = name;
    document.getElementById("chat-avatar").textContent = name.charAt(0).toUpperCase();
    this.renderSubtitle();
    const status = current.status;
    // Offer what the lifecycle allows this agent (the server still decides): a `user` handles
    // the tickets they own, and closes a waiting one only with `force_close`.
    const handles = this.me.profile !== "user" || current.owner_id === this.me.id;
    const show = {
      accept: status === "pending",
      return: status === "open" && handles,
      transfer: status === "pending" || (status !== "closed" && handles),
      pause: status === "open" && handles,
      resume: status === "paused" && handles,
      close: status === "pending" ? handles || this.settings.force_close : status !== "closed" && handles,
      reopen: status === "closed",
    };
    for (const button of this.root.querySelectorAll("[data-action]")) {
      button.hidden = !show[button.dataset.action];
    }
    const reply = this.canReply();
    document.getElementById("composer").hidden = !reply;
    this.templates.setTicket(reply ? current : null);
    if (this.access === "none") {
      this.setNotice(t("attendance.chat.spy_disabled"));
    } else if (status === "closed") {
      this.setNotice(t("attendance.chat.closed_notice"));
    } else if (!reply) {
      this.setNotice(t("attendance.chat.spy_preview"));
    } else {
      this.setNotice(null);
    }
    this.root.dataset.status = status;
  }

  async renderSubtitle() {
    const ticket = this.ticket;
    const parts = [`${t("attendance.chat.protocol")} ${ticket.protocol}`, t(`attendance.status.${ticket.status}`)];
    const queue = this.config.queues.find((q) => q.id === ticket.queue_id);
    parts.push(queue ? queue.name : t("attendance.chat.no_queue"));
    if (ticket.owner_id) {
      const users = await this.loadUsers().catch(() => []);
      if (this.ticket?.id !== ticket.id) return;
      const owner = users.find((u) => u.id === ticket.owner_id);
      parts.push(owner ? owner.name : `#${ticket.owner_id}`);
    }
    document.getElementById("chat-sub").textContent = parts.join(" · ");
  }

  setNotice(text) {
    this.notice.textContent = text ?? "";
    this.notice.hidden = !text;
  }

  /** SPEC §7 `reply_refusal`: closed never; pending only for administrators and supervisors. */
  canReply() {
    const status = this.ticket?.status;
    if (!status || status === "closed" || this.access === "none") return false;
    return !(status === "pending" && this.me.profile === "user");
  }

  /** A live ticket frame. */
  onTicket(ticket) {
    if (ticket.id !== this.id || !this.ticket) return;
    const wasReadable = this.canReply();
    const accessBefore = this.access;
    this.setTicket(ticket);
    // Accepting opens the chat to a user who could not read it pending.
    if (accessBefore === "none" && ticket.owner_id === this.me.id) {
      this.open(ticket.id);
    } else if (!wasReadable && this.canReply()) {
      this.composer.focus();
    }
  }

  /** The ticket left this user's view (transferred away, settings changed…). */
  onHidden(ticketId) {
    if (ticketId !== this.id) return;
    toast(t("attendance.chat.hidden"), "info");
    this.close();
  }

  markRead() {
    const ticket = this.ticket;
    if (!ticket || ticket.owner_id !== this.me.id || !(ticket.unread > 0)) return;
    post(`/api/v1/tickets/${ticket.id}/read`).catch(() => {});
  }

  // ---- messages ----

  belongsHere(message) {
    if (!this.ticket || message.redacted) return false;
    if (message.ticket_id === this.id) return true;
    return (
      this.settings.show_message_history &&
      message.contact_id === this.ticket.contact_id &&
      message.connection_id === this.ticket.connection_id
    );
  }

  /** A message queued from outside the composer (a template), shown before its live frame. */
  showSent(message) {
    if (message.ticket_id !== this.id) return;
    this.setNotice(null);
    if (!this.rows.has(message.id)) this.addMessages([message]);
    this.scrollToBottom();
  }

  /** A live message frame (`created` false for a status change). */
  onMessage(message, created) {
    if (!this.belongsHere(message)) return;
    const stick = this.nearBottom();
    this.addMessages([message]);
    if (!created) return;
    if (stick || message.direction === "out") this.scrollToBottom();
    else this.newBelow.hidden = false;
    if (message.direction === "in" && document.hasFocus()) {
      this.ticket.unread = (this.ticket.unread ?? 0) + 1;
      this.markRead();
    }
  }

  async loadOlder(first = false) {
    if (this.loadingOlder || (!first && !this.cursor) || this.id === null) return;
    const id = this.id;
    this.loadingOlder = true;
    try {
      const query = this.cursor ? `?before=${encodeURIComponent(this.cursor)}` : "";
      const page = await get(`/api/v1/tickets/${id}/messages${query}`, { signal: this.abort?.signal });
      if (this.id !== id) return;
      this.cursor = page.next_cursor;
      const before = this.list.scrollHeight - this.list.scrollTop;
      this.addMessages(page.messages);
      if (first) {
        this.scrollToBottom();
        if (!page.messages.length) this.setNotice(t("attendance.chat.no_messages"));
      } else {
        this.list.scrollTop = this.list.scrollHeight - before;
      }
      this.root.dataset.loaded = "true";
    } catch (error) {
      if (error?.name !== "AbortError") toast(explain(error));
    } finally {
      this.loadingOlder = false;
    }
    // A short first page leaves no scrollbar to pull: keep reading until there is one.
    if (this.id === id && this.cursor && this.list.scrollHeight <= this.list.clientHeight + 120) {
      this.loadOlder();
    }
  }

  /** Adds or updates messages, keeping the list in (sent_at, id) order with its separators. */
  addMessages(messages) {
    const touched = new Set();
    for (const message of messages) {
      const existing = this.rows.get(message.id);
      const row = this.renderMessage(message);
      if (existing) {
        existing.replaceWith(row);
      } else {
        this.insertSorted(row);
      }
      this.rows.set(message.id, row);
      touched.add(row);
      if (row.nextElementSibling) touched.add(row.nextElementSibling);
    }
    for (const row of touched) this.separate(row);
  }

  insertSorted(row) {
    const key = (r) => [Number(r.dataset.sent), Number(r.dataset.id)];
    const [sent, id] = key(row);
    const after = (other) => {
      const [s, i] = key(other);
      return sent > s || (sent === s && id > i);
    };
    const items = this.list.children;
    if (!items.length || after(items[items.length - 1])) {
      this.list.append(row);
      return;
    }
    let low = 0;
    let high = items.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (after(items[middle])) low = middle + 1;
      else high = middle;
    }
    this.list.insertBefore(row, items[low] ?? null);
  }

  /** The day and ticket separators above a row, from the row before it. */
  separate(row) {
    row.querySelector(":scope > .separators")?.remove();
    const previous = row.previousElementSibling;
    const sent = Number(row.dataset.sent);
    const ticket = Number(row.dataset.ticket);
    const marks = [];
    if (!previous || !sameDay(Number(previous.dataset.sent), sent)) {
      marks.push(el("div", { class: "sep-day", role: "separator" }, el("span", { text: dayLabel(sent) })));
    }
    const ticketChanged = previous ? Number(previous.dataset.ticket) !== ticket : ticket !== this.id;
    if (ticketChanged) {
      const words = ticket === this.id ? t("attendance.chat.this_ticket") : t("attendance.chat.earlier_ticket", { id: ticket });
      marks.push(el("div", { class: "sep-ticket", role: "separator" }, el("span", { text: words })));
    }
    if (marks.length) row.prepend(el("div", { class: "separators" }, marks));
  }

  renderMessage(message) {
    const system = message.author === "system" || message.kind === "system_note";
    const side = system ? "note" : message.direction === "in" ? "in" : "out";
    const bubble = el("div", { class: `msg msg-${side}` });
    if (message.ticket_id !== this.id) bubble.classList.add("msg-history");
    if (hasFile(message)) {
      const url = `/api/v1/tickets/${this.id}/messages/${message.id}/file`;
      bubble.append(el("div", { class: "msg-media" }, mediaElement(message, url, { waveform: this.settings.audio_waveform })));
    }
    if (message.body) {
      bubble.append(el("p", { class: "msg-body" }, linkified(message.body)));
    }
    const meta = el("div", { class: "msg-meta" }, el("time", { datetime: new Date(message.sent_at).toISOString(), text: clockTime(message.sent_at) }));
    if (message.direction === "out" && !system) {
      const label = t(`attendance.delivery.${message.status}`);
      meta.append(el("span", { class: `msg-status status-${message.status}`, role: "img", "aria-label": label, title: label }, icon(STATUS_ICONS[message.status] ?? "clock")));
    }
    bubble.append(meta);
    if (message.status === "failed" && message.direction === "out") {
      const reason = message.failure_reason || t("attendance.delivery.unknown_reason");
      bubble.append(
        el(
          "div",
          { class: "msg-failed" },
          el("span", { text: t("attendance.delivery.failed_reason", { reason }) }),
          el("button", { type: "button", class: "resend", text: t("attendance.delivery.resend"), onclick: () => this.resend(message) }),
        ),
      );
    }
    return el("li", { class: "msg-row", dataset: { id: message.id, sent: message.sent_at, ticket: message.ticket_id, status: message.status } }, bubble);
  }

  nearBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.newBelow.hidden = true;
  }

  // ---- sending ----

  async send({ body, file }) {
    const id = this.id;
    // Kept across a retry after a lost answer, so the server stores the message once.
    this.pendingKey ??= newKey();
    try {
      let message;
      if (file) {
        const form = new FormData();
        form.append("body", body);
        form.append("idempotency_key", this.pendingKey);
        form.append("file", file, file.name);
        message = await post(`/api/v1/tickets/${id}/messages`, form);
      } else {
        message = await post(`/api/v1/tickets/${id}/messages`, { body, idempotency_key: this.pendingKey });
      }
      this.pendingKey = null;
      if (this.id === id) {
        this.setNotice(null);
        // The live frames of this message may have come first, with a later status.
        if (!this.rows.has(message.id)) this.addMessages([message]);
        this.scrollToBottom();
      }
      return true;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 0)) this.pendingKey = null;
      toast(explain(error));
      return false;
    }
  }

  async resend(message) {
    try {
      const again = await post(`/api/v1/tickets/${this.id}/messages/${message.id}/resend`);
      if (this.rows.get(again.id)?.dataset.status === "failed") this.addMessages([again]);
    } catch (error) {
      toast(explain(error));
    }
  }

  // ---- commands ----

  async command(action) {
    if (!this.ticket) return;
    if (action === "transfer") return this.openTransfer();
    if (action === "close") return this.openClose();
    if (action === "pause") return this.openDialog("pause-dialog");
    const outcome = await this.run(action);
    if (!outcome.ok) toast(outcome.message);
  }

  /** Runs a command; answers whether it went through. */
  async run(action, body) {
    const id = this.id;
    try {
      const ticket = await post(`/api/v1/tickets/${id}/${action}`, body);
      toast(t(`attendance.done.${action}`), "ok", 3000);
      this.hooks.ticketChanged?.(ticket);
      if (this.id === id) {
        this.setTicket(ticket);
        if (action === "accept") {
          this.hooks.accepted?.(ticket);
          if (this.access === "none") this.open(id);
          else this.composer.focus();
        }
      }
      return { ok: true };
    } catch (error) {
      return { ok: false, message: explain(error) };
    }
  }

  openDialog(id) {
    const dialog = document.getElementById(id);
    dialog.querySelector(".alert").hidden = true;
    dialog.showModal();
    return dialog;
  }

  async loadUsers() {
    this.users ??= get("/api/v1/users");
    try {
      return await this.users;
    } catch (error) {
      this.users = null;
      throw error;
    }
  }

  async openTransfer() {
    const queueSelect = document.getElementById("transfer-queue");
    const userSelect = document.getElementById("transfer-user");
    const none = () => el("option", { value: "", text: t("attendance.transfer.none") });
    queueSelect.replaceChildren(none(), ...this.config.queues.map((q) => el("option", { value: q.id, text: q.name })));
    userSelect.replaceChildren(none());
    document.getElementById("transfer-note").value = "";
    this.openDialog("transfer-dialog");
    queueSelect.focus();
    try {
      const users = await this.loadUsers();
      userSelect.append(
        ...users
          .filter((u) => u.tenant_id !== null && u.id !== this.ticket?.owner_id)
          .map((u) => el("option", { value: u.id, text: u.name })),
      );
    } catch (error) {
      toast(explain(error));
    }
  }

  async submitTransfer(event) {
    event.preventDefault();
    const queue = document.getElementById("transfer-queue").value;
    const user = document.getElementById("transfer-user").value;
    const note = document.getElementById("transfer-note").value.trim();
    const error = document.getElementById("transfer-error");
    if (!queue && !user) {
      error.textContent = t("attendance.transfer.need_target");
      error.hidden = false;
      return;
    }
    const body = {};
    if (queue) body.queue_id = Number(queue);
    if (user) body.user_id = Number(user);
    if (note) body.note = note;
    await this.finishDialog("transfer-dialog", "transfer", body);
  }

  async openClose() {
    const select = document.getElementById("close-demand");
    const required = this.settings.require_demand_on_close;
    select.required = required;
    select.replaceChildren(el("option", { value: "", text: t(required ? "attendance.close.choose_demand" : "attendance.close.no_demand") }));
    document.getElementById("close-note").value = "";
    this.openDialog("close-dialog");
    select.focus();
    try {
      this.demands ??= await get("/api/v1/demands");
      select.append(...this.demands.filter((d) => d.active).map((d) => el("option", { value: d.id, text: d.name })));
    } catch (error) {
      this.demands = null;
      toast(explain(error));
    }
  }

  async submitClose(event) {
    event.preventDefault();
    const demand = document.getElementById("close-demand").value;
    const note = document.getElementById("close-note").value.trim();
    if (!demand && this.settings.require_demand_on_close) {
      const error = document.getElementById("close-error");
      error.textContent = t("attendance.close.demand_required");
      error.hidden = false;
      document.getElementById("close-demand").focus();
      return;
    }
    const body = {};
    if (demand) body.demand_id = Number(demand);
    if (note) body.note = note;
    await this.finishDialog("close-dialog", "close", body);
  }

  async submitPause(event) {
    event.preventDefault();
    const reason = document.getElementById("pause-reason").value.trim();
    await this.finishDialog("pause-dialog", "pause", reason ? { reason } : {});
  }

  async finishDialog(id, action, body) {
    const dialog = document.getElementById(id);
    const submit = dialog.querySelector("button[type=submit]");
    submit.disabled = true;
    const outcome = await this.run(action, body);
    submit.disabled = false;
    if (outcome.ok) {
      dialog.close();
    } else {
      const error = dialog.querySelector(".alert");
      error.textContent = outcome.message;
      error.hidden = false;
    }
  }
}
