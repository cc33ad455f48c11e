// WhatsApp Business templates in the chat (SPEC §7): on a WhatsApp Cloud API ticket the
// composer offers a "Template" button; its dialog lists the connection's approved templates,
// asks one field per body parameter and sends through the ticket's template route. Outside the
// 24 h window this is the only way to write to the contact.

import { get, post, t } from "./common.js";
import { el, explain, newKey } from "./attendance-util.js";

export class TemplatePicker {
  /** `sent(message)` gets the queued template message so the chat can show it at once. */
  constructor({ sent }) {
    this.sent = sent;
    this.button = document.getElementById("template-button");
    this.dialog = document.getElementById("template-dialog");
    this.select = document.getElementById("template-select");
    this.preview = document.getElementById("template-preview");
    this.params = document.getElementById("template-params");
    this.error = document.getElementById("template-error");
    this.submitButton = document.getElementById("template-submit");
    this.ticket = null;
    this.templates = [];
    this.pendingKey = null;
    if (!this.button || !this.dialog) return;
    this.button.addEventListener("click", () => this.open());
    this.select.addEventListener("change", () => this.showChosen());
    document.getElementById("template-form").addEventListener("submit", (event) => this.submit(event));
  }

  /** Offers the button for `ticket` (a WhatsApp Cloud API one), or hides it for `null`. */
  setTicket(ticket) {
    if (!this.button) return;
    this.ticket = ticket;
    this.button.hidden = !ticket;
  }

  async open() {
    const ticket = this.ticket;
    if (!ticket) return;
    this.error.hidden = true;
    this.pendingKey = null;
    this.select.replaceChildren(el("option", { value: "", text: t("attendance.template.loading") }));
    this.preview.textContent = "";
    this.params.replaceChildren();
    this.submitButton.disabled = true;
    this.dialog.showModal();
    try {
      const all = await get(`/api/v1/connections/${ticket.connection_id}/templates`);
      if (this.ticket?.id !== ticket.id) return;
      this.templates = all.filter((template) => template.approved);
    } catch (error) {
      this.fail(explain(error));
      return;
    }
    if (!this.templates.length) {
      this.select.replaceChildren(el("option", { value: "", text: t("attendance.template.none") }));
      return;
    }
    this.select.replaceChildren(
      ...this.templates.map((template, index) =>
        el("option", { value: index, text: `${template.name} (${template.language})` }),
      ),
    );
    this.showChosen();
    this.select.focus();
  }

  chosen() {
    return this.templates[Number(this.select.value)] ?? null;
  }

  showChosen() {
    const template = this.chosen();
    this.pendingKey = null;
    this.preview.textContent = template?.body ?? "";
    this.params.replaceChildren();
    for (let n = 1; n <= (template?.param_count ?? 0); n++) {
      this.params.append(
        el(
          "label",
          {},
          t("attendance.template.param", { n }),
          el("input", { name: `param-${n}`, required: true, maxlength: 1024, "data-param": n }),
        ),
      );
    }
    this.submitButton.disabled = !template;
  }

  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  async submit(event) {
    event.preventDefault();
    const template = this.chosen();
    const ticket = this.ticket;
    if (!template || !ticket) return;
    const params = [...this.params.querySelectorAll("input[data-param]")].map((input) => input.value.trim());
    const empty = params.findIndex((value) => !value);
    if (empty >= 0) {
      this.fail(t("attendance.template.param_required", { n: empty + 1 }));
      this.params.querySelectorAll("input")[empty].focus();
      return;
    }
    // Kept across a retry after a lost answer, so the server stores the message once.
    this.pendingKey ??= newKey();
    this.submitButton.disabled = true;
    try {
      const message = await post(`/api/v1/tickets/${ticket.id}/messages/template`, {
        name: template.name,
        language: template.language,
        params,
        idempotency_key: this.pendingKey,
      });
      this.pendingKey = null;
      this.dialog.close();
      this.sent(message);
    } catch (error) {
      this.fail(explain(error));
    } finally {
      this.submitButton.disabled = false;
    }
  }
}
