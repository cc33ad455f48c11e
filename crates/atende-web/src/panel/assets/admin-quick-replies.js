// Quick replies page: `/shortcut` and text. Everyone keeps personal replies; managers also share
// global ones and may change anyone's.

import { t } from "./common.js";
import { crud, el, excerpt } from "./admin.js";

const root = document.getElementById("quick-replies-page");
const manager = root.dataset.manager === "true";
const me = Number(root.dataset.userId);

crud({
  base: "/api/v1/quick-replies",
  table: "#reply-table",
  dialog: "#reply-dialog",
  newButton: "#reply-new",
  name: (reply) => `/${reply.shortcut}`,
  canChange: (reply) => manager || reply.user_id === me,
  row: (reply) => [
    el("code", { text: `/${reply.shortcut}` }),
    excerpt(reply.body, 120),
    reply.user_id === null ? t("admin.quick_replies.scope_global") : t("admin.quick_replies.scope_personal"),
  ],
  fill(form, reply) {
    form.elements.shortcut.value = reply?.shortcut ?? "";
    form.elements.body.value = reply?.body ?? "";
    form.elements.global.checked = reply ? reply.user_id === null : false;
  },
  read(form, reply) {
    const body = { shortcut: form.elements.shortcut.value, body: form.elements.body.value };
    const global = form.elements.global.checked;
    // Sent only when it changes: `global: false` would also make the reply the caller's own.
    if (manager && (reply === null ? global : global !== (reply.user_id === null))) body.global = global;
    return body;
  },
});
