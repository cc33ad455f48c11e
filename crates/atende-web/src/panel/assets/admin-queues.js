// Queues page: name, colour, greeting, absence message and business hours (null = the company's).

import { t } from "./common.js";
import { chip, crud, excerpt, hoursEditor, hoursSummary } from "./admin.js";

const hours = hoursEditor(document.getElementById("queue-hours"));

crud({
  base: "/api/v1/queues",
  table: "#queue-table",
  dialog: "#queue-dialog",
  newButton: "#queue-new",
  name: (queue) => queue.name,
  row: (queue) => [
    chip(queue.name, queue.color),
    excerpt(queue.greeting) || t("admin.common.none"),
    hoursSummary(queue.business_hours),
  ],
  fill(form, queue) {
    form.elements.name.value = queue?.name ?? "";
    form.elements.color.value = queue?.color ?? "#5b6cff";
    form.elements.greeting.value = queue?.greeting ?? "";
    form.elements.absence_message.value = queue?.absence_message ?? "";
    hours.value = queue?.business_hours ?? null;
  },
  read: (form) => ({
    name: form.elements.name.value,
    color: form.elements.color.value,
    greeting: form.elements.greeting.value,
    absence_message: form.elements.absence_message.value,
    business_hours: hours.value,
  }),
});
