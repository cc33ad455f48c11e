// Demands page: the reasons a ticket is closed with; inactive ones stay for history.

import { t } from "./common.js";
import { crud } from "./admin.js";

crud({
  base: "/api/v1/demands",
  table: "#demand-table",
  dialog: "#demand-dialog",
  newButton: "#demand-new",
  name: (demand) => demand.name,
  row: (demand) => [demand.name, demand.active ? t("admin.common.yes") : t("admin.common.no")],
  fill(form, demand) {
    form.elements.name.value = demand?.name ?? "";
    form.elements.active.checked = demand?.active ?? true;
  },
  read: (form) => ({ name: form.elements.name.value, active: form.elements.active.checked }),
});
