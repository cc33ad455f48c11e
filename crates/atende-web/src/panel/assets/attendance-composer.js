// The chat's composer: text (Enter sends, Shift+Enter breaks the line), a small emoji set, one
// attached file with its preview, voice notes, quick replies completed from `/shortcut`, and the
// signature switch. It only gathers the message; the chat view sends it.

import { get, patch, t, toast } from "./common.js";
import { el, explain, fileSize } from "./attendance-util.js";
import { Recorder } from "./attendance-media.js";

// A handwritten set of the emoji agents use most.
const EMOJI = [
  "😀", "😃", "😄", "😁", "😊", "🙂", "😉", "😍", "😘", "🤗", "🤔", "😅",
  "😂", "🤣", "😢", "😭", "😮", "😴", "😎", "🙏", "👍", "👎", "👏", "🙌",
  "👋", "🤝", "💪", "👀", "✅", "❌", "⚠️", "❗", "❓", "⭐", "🔥", "🎉",
  "❤️", "💙", "💚", "📞", "📧", "📎", "📷", "📄", "🕐", "📅", "💰", "🚚",
];

export class Composer {
  /**
   * `send({body, file})` sends and resolves true when the message went; `config` is the page's
   * `#attendance-config`.
   */
  constructor({ config, send }) {
    this.config = config;
    this.send = send;
    this.form = document.getElementById("composer");
    this.input = document.getElementById("message-input");
    this.sendButton = document.getElementById("send-button");
    this.fileInput = document.getElementById("file-input");
    this.attachment = document.getElementById("attachment");
    this.picker = document.getElementById("emoji-picker");
    this.emojiButton = document.getElementById("emoji-button");
    this.suggestions = document.getElementById("quick-replies");
    this.signature = document.getElementById("signature-toggle");
    this.recordButton = document.getElementById("record-button");
    this.recorderBar = document.getElementById("recorder");
    this.ticketId = null;
    this.file = null;
    this.previewUrl = null;
    this.drafts = new Map();
    this.replies = null;
    this.matches = [];
    this.active = -1;
    this.sending = false;
    this.wire();
  }

  wire() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("input", () => {
      this.grow();
      this.drafts.set(this.ticketId, this.input.value);
      this.suggest();
    });
    this.input.addEventListener("paste", (event) => {
      const file = event.clipboardData?.files?.[0];
      if (file) {
        event.preventDefault();
        this.attach(file);
      }
    });
    this.input.addEventListener("blur", () => setTimeout(() => this.closeSuggestions(), 150));
    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      this.fileInput.value = "";
      if (file) this.attach(file);
    });
    this.emojiButton.addEventListener("click", () => this.togglePicker());
    this.picker.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        this.togglePicker(false);
        this.emojiButton.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!this.picker.hidden && !this.picker.contains(event.target) && !this.emojiButton.contains(event.target)) {
        this.togglePicker(false);
      }
    });
    this.signature?.addEventListener("change", () => this.switchSignature());
    if (this.recordButton) {
      if (!Recorder.supported()) this.recordButton.hidden = true;
      this.recordButton.addEventListener("click", () => this.record());
      document.getElementById("recorder-stop").addEventListener("click", () => this.stopRecording());
      document.getElementById("recorder-cancel").addEventListener("click", () => this.cancelRecording());
    }
  }

  /** Switches to another ticket's chat, keeping each ticket's unsent text. */
  setTicket(id) {
    if (id === this.ticketId) return;
    this.cancelRecording();
    this.detach();
    this.closeSuggestions();
    this.togglePicker(false);
    this.ticketId = id;
    this.input.value = this.drafts.get(id) ?? "";
    this.grow();
    if (this.signature) this.loadSignature(id);
  }

  focus() {
    this.input.focus();
  }

  grow() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  onKey(event) {
    if (!this.suggestions.hidden && this.matches.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.highlight((this.active + step + this.matches.length) % this.matches.length);
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        this.pick(this.matches[Math.max(0, this.active)]);
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.closeSuggestions();
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    }
  }

  async submit() {
    if (this.sending) return;
    const body = this.input.value;
    const file = this.file;
    if (!body.trim() && !file) return;
    this.sending = true;
    this.sendButton.disabled = true;
    try {
      const sent = await this.send({ body, file });
      if (sent) {
        this.input.value = "";
        this.drafts.delete(this.ticketId);
        this.detach();
        this.grow();
      }
    } finally {
      this.sending = false;
      this.sendButton.disabled = false;
      this.input.focus();
    }
  }

  // ---- attachments ----

  attach(file) {
    if (file.size > this.config.max_upload_bytes) {
      toast(t("attendance.error.too_large"));
      return;
    }
    this.detach();
    this.file = file;
    this.previewUrl = URL.createObjectURL(file);
    let preview;
    if (file.type.startsWith("image/")) {
      preview = el("img", { src: this.previewUrl, alt: file.name, class: "attachment-image" });
    } else if (file.type.startsWith("audio/")) {
      preview = el("audio", { src: this.previewUrl, controls: true, class: "attachment-audio" });
    } else {
      preview = el("span", { class: "attachment-icon", "aria-hidden": "true", text: "📄" });
    }
    const remove = el("button", {
      type: "button",
      class: "icon-button attachment-remove",
      "aria-label": t("attendance.composer.remove_file"),
      text: "×",
      onclick: () => {
        this.detach();
        this.input.focus();
      },
    });
    this.attachment.replaceChildren(
      preview,
      el("span", { class: "attachment-name", text: `${file.name} · ${fileSize(file.size)}` }),
      remove,
    );
    this.attachment.hidden = false;
    this.input.placeholder = t("attendance.composer.caption");
    this.input.focus();
  }

  detach() {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = null;
    this.file = null;
    this.attachment.replaceChildren();
    this.attachment.hidden = true;
    this.input.placeholder = t("attendance.composer.placeholder");
  }

  // ---- voice notes ----

  async record() {
    if (this.recorder) return;
    const recorder = new Recorder();
    try {
      await recorder.start();
    } catch {
      recorder.release();
      toast(t("attendance.composer.mic_denied"));
      return;
    }
    this.recorder = recorder;
    this.recorderBar.hidden = false;
    this.recordButton.hidden = true;
    const time = document.getElementById("recorder-time");
    this.recorderTimer = setInterval(() => (time.textContent = recorder.elapsed()), 250);
    document.getElementById("recorder-stop").focus();
  }

  async stopRecording() {
    const recorder = this.recorder;
    if (!recorder) return;
    this.endRecording();
    const file = await recorder.stop();
    if (file.size > 0) this.attach(file);
  }

  cancelRecording() {
    if (!this.recorder) return;
    this.recorder.cancel();
    this.endRecording();
  }

  endRecording() {
    clearInterval(this.recorderTimer);
    this.recorder = null;
    this.recorderBar.hidden = true;
    if (this.recordButton) this.recordButton.hidden = false;
  }

  // ---- emoji ----

  togglePicker(open = this.picker.hidden) {
    if (open && !this.picker.childElementCount) {
      for (const emoji of EMOJI) {
        this.picker.append(
          el("button", {
            type: "button",
            class: "emoji",
            text: emoji,
            "aria-label": emoji,
            onclick: () => this.insert(emoji),
          }),
        );
      }
    }
    this.picker.hidden = !open;
    this.emojiButton.setAttribute("aria-expanded", String(open));
    if (open) this.picker.querySelector("button")?.focus();
  }

  insert(text) {
    const { selectionStart: start, selectionEnd: end, value } = this.input;
    this.input.value = value.slice(0, start) + text + value.slice(end);
    this.input.selectionStart = this.input.selectionEnd = start + text.length;
    this.drafts.set(this.ticketId, this.input.value);
    this.input.focus();
  }

  // ---- quick replies ----

  /** The `/word` being typed just before the caret, if any. */
  typedShortcut() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const found = /(^|\s)\/([\p{L}\p{N}_-]*)$/u.exec(before);
    return found ? { word: found[2], start: before.length - found[2].length - 1 } : null;
  }

  async suggest() {
    const typed = this.typedShortcut();
    if (!typed) {
      this.closeSuggestions();
      return;
    }
    if (this.replies === null) {
      this.replies = [];
      try {
        this.replies = await get("/api/v1/quick-replies");
      } catch (error) {
        this.replies = null;
        toast(explain(error));
        return;
      }
    }
    const word = typed.word.toLowerCase();
    this.matches = this.replies
      .filter((reply) => reply.shortcut.toLowerCase().startsWith(word))
      .slice(0, 8);
    this.suggestions.replaceChildren(
      ...this.matches.map((reply, index) =>
        el(
          "li",
          {
            role: "option",
            id: `quick-reply-${index}`,
            class: "quick-reply",
            "aria-selected": "false",
            onmousedown: (event) => {
              event.preventDefault();
              this.pick(reply);
            },
          },
          el("strong", { text: `/${reply.shortcut}` }),
          el("span", { text: reply.body }),
        ),
      ),
    );
    if (!this.matches.length) {
      this.suggestions.append(el("li", { class: "quick-reply muted", text: t("attendance.composer.no_quick_replies") }));
    }
    this.suggestions.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight(this.matches.length ? 0 : -1);
  }

  highlight(index) {
    this.active = index;
    this.suggestions.querySelectorAll("[role=option]").forEach((item, i) => {
      item.setAttribute("aria-selected", String(i === index));
    });
    if (index >= 0) this.input.setAttribute("aria-activedescendant", `quick-reply-${index}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  pick(reply) {
    const typed = this.typedShortcut();
    if (!reply || !typed) return;
    const value = this.input.value;
    const caret = this.input.selectionStart;
    this.input.value = value.slice(0, typed.start) + reply.body + value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = typed.start + reply.body.length;
    this.drafts.set(this.ticketId, this.input.value);
    this.closeSuggestions();
    this.grow();
  }

  closeSuggestions() {
    this.suggestions.hidden = true;
    this.matches = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  // ---- signature ----

  async loadSignature(id) {
    try {
      const state = await get(`/attendance/tickets/${id}/signature`);
      if (this.ticketId === id) this.signature.checked = state.enabled;
    } catch {
      // The switch keeps its last state; sending still works.
    }
  }

  async switchSignature() {
    const enabled = this.signature.checked;
    try {
      await patch(`/api/v1/tickets/${this.ticketId}/signature`, { enabled });
    } catch (error) {
      this.signature.checked = !enabled;
      toast(explain(error));
    }
  }
}
