// Users page: list, create/edit (profile, queues, language, time zone, own business hours),
// password reset, delete. Everything through /api/v1/users.

import { t, get, patch, toast } from "./common.js";
import {
  chip,
  checkedIds,
  clearErrors,
  crud,
  el,
  fillChecklist,
  hoursEditor,
  openDialog,
  rowButton,
  setupDialog,
  showError,
} from "./admin.js";

const hours = hoursEditor(document.getElementById("user-hours"));
const queueBox = document.getElementById("user-queues");
let queues = [];

function queueChips(ids) {
  const chosen = queues.filter((queue) => ids.includes(queue.id));
  if (!chosen.length) return el("span", { class: "muted", text: t("admin.common.none") });
  return el("span", { class: "chips" }, chosen.map((queue) => chip(queue.name, queue.color)));
}

function presence(user) {
  const state = user.presence ?? "offline";
  return el("span", { class: `presence presence-${state}` }, t(`admin.presence.${state}`));
}

const passwordDialog = setupDialog(document.getElementById("password-dialog"));
const passwordForm = passwordDialog.querySelector("form");
let resetting = null;

passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(passwordForm);
  if (!passwordForm.reportValidity() || !resetting) return;
  try {
    await patch(`/api/v1/users/${resetting.id}`, { password: passwordForm.elements.password.value });
    passwordDialog.close();
    toast(t("admin.users.password_reset_done", { name: resetting.name }), "ok");
  } catch (error) {
    showError(passwordForm, error);
  }
});

crud({
  base: "/api/v1/users",
  table: "#user-table",
  dialog: "#user-dialog",
  newButton: "#user-new",
  async load() {
    const [users, allQueues] = await Promise.all([get("/api/v1/users"), get("/api/v1/queues")]);
    queues = allQueues;
    return users;
  },
  name: (user) => user.name,
  row: (user) => [
    user.name,
    user.email,
    t(`admin.profile.${user.profile ?? "user"}`),
    queueChips(user.queue_ids ?? []),
    presence(user),
  ],
  extraActions: (user) => [
    rowButton(t("admin.users.reset_password"), user.name, () => {
      resetting = user;
      passwordForm.reset();
      document.getElementById("password-for").textContent = `${user.name} <${user.email}>`;
      openDialog(passwordDialog);
    }),
  ],
  fill(form, user) {
    form.elements.name.value = user?.name ?? "";
    form.elements.email.value = user?.email ?? "";
    form.elements.profile.value = user?.profile ?? "user";
    form.elements.locale.value = user?.locale || "pt-BR";
    form.elements.timezone.value = user?.timezone ?? "";
    form.elements.password.required = user === null;
    form.elements.password.value = "";
    fillChecklist(queueBox, queues, user?.queue_ids ?? []);
    document.getElementById("user-no-queues").hidden = queues.length > 0;
    hours.value = user?.business_hours ?? null;
  },
  read(form, user) {
    const body = {
      name: form.elements.name.value,
      email: form.elements.email.value,
      profile: form.elements.profile.value,
      locale: form.elements.locale.value,
      timezone: form.elements.timezone.value.trim() || null,
      queue_ids: checkedIds(queueBox),
      business_hours: hours.value,
    };
    if (user === null) body.password = form.elements.password.value;
    return body;
  },
});
