// Tags page: name and colour.

import { chip, crud } from "./admin.js";

crud({
  base: "/api/v1/tags",
  table: "#tag-table",
  dialog: "#tag-dialog",
  newButton: "#tag-new",
  name: (tag) => tag.name,
  row: (tag) => [chip(tag.name, tag.color), tag.color],
  fill(form, tag) {
    form.elements.name.value = tag?.name ?? "";
    form.elements.color.value = tag?.color ?? "#5b6cff";
  },
  read: (form) => ({ name: form.elements.name.value, color: form.elements.color.value }),
});
