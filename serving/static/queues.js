// Work queues: my cases, waiting for my approval, unassigned, all active, overdue; the SLA
// clock of each case; bulk assignment and bulk closing of false positives.
import { html, useEffect, useState, Link, Status, ErrorLine } from "./ui.js";
import { t, when, duration } from "./i18n.js";
import * as api from "./api.js";

const VIEWS = [["mine", "mine"], ["approval", "approval"], ["unassigned", "unassignedQ"],
  ["active", "active"], ["overdue", "overdue"]];
const RANK = { viewer: 0, investigator: 1, supervisor: 2, admin: 3 };

export function QueuesPage({ view, me }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [people, setPeople] = useState([]);
  const [msg, setMsg] = useState("");
  const canAct = RANK[me.role] >= RANK.investigator;
  const load = () => api.get("/v1/queues/" + view).then((d) => { setData(d); setSelected(new Set()); })
    .catch(setError);
  useEffect(() => { load(); }, [view]);
  useEffect(() => { if (canAct) api.get("/v1/people").then((p) => setPeople(p.items)).catch(() => {}); }, []);

  const toggle = (id) => setSelected((old) => {
    const s = new Set(old);
    s.has(id) ? s.delete(id) : s.add(id);
    return s;
  });
  const assign = async (e) => {
    e.preventDefault();
    const who = e.target.elements.assignee.value;
    try {
      const r = await api.post("/v1/cases/assignment", { case_ids: [...selected],
        assignee: who || null });
      setMsg(`${t("saved")}: ${r.assigned.length}`);
      load();
    } catch (err) { setError(err); }
  };
  const closeFalsePositives = async (e) => {
    e.preventDefault();
    const reason = e.target.elements.note.value.trim();
    if (!reason) { setError(new Error(t("noteNeeded"))); return; }
    let done = 0;
    const failures = [];
    for (const c of data.items.filter((x) => selected.has(x.case_id))) {
      try {
        await api.post(`/v1/cases/${c.case_id}/transitions`, { to: "closed", reason,
          outcome: "false_positive" });
        done += 1;
      } catch (err) { failures.push(`#${c.case_id}: ${err.message}`); }
    }
    setMsg(`${t("saved")}: ${done}` + (failures.length ? " · " + failures.join("; ") : ""));
    load();
  };
  return html`<main class="queues">
    <nav class="tabs" id="queue-tabs">${VIEWS.map(([v, label]) => html`<${Link}
      href=${"/ui/queues/" + v} id=${"queue-" + v} class=${(v === view ? "active " : "") + (v === "overdue" && data && data.counts.overdue ? "alarm" : "")}>
      ${t(label)} <span class="count">${data ? data.counts[v] : ""}</span><//>`)}</nav>
    <${ErrorLine} error=${error} />
    ${msg ? html`<p class="ok" id="queue-msg">${msg}</p>` : ""}
    ${data ? html`<div class="table-wrap"><table class="grid" id="queue">
      <thead><tr>${canAct ? html`<th><input type="checkbox" aria-label="all" id="select-all"
          checked=${data.items.length > 0 && selected.size === data.items.length}
          onChange=${(e) => setSelected(e.target.checked ? new Set(data.items.map((x) => x.case_id)) : new Set())} /></th>` : ""}
        <th>${t("case")}</th><th>${t("account")}</th><th>${t("state")}</th><th>${t("score")}</th>
        <th>${t("typology")}</th><th>${t("assignee")}</th><th>${t("inState")} / ${t("deadline")}</th>
        <th>${t("openedBy")}</th></tr></thead>
      <tbody>${data.items.map((c) => html`<tr key=${c.case_id} class=${c.overdue ? "overdue" : ""}
          data-case-id=${c.case_id}>
        ${canAct ? html`<td><input type="checkbox" class="pick" checked=${selected.has(c.case_id)}
          onChange=${() => toggle(c.case_id)} aria-label=${"#" + c.case_id} /></td>` : ""}
        <td>#${c.case_id}</td>
        <td><${Link} href=${"/ui/accounts/" + encodeURIComponent(c.account_id)}>${c.account_id}<//></td>
        <td><${Status} value=${c.status} />${c.freeze_requested_by ? html`<div class="small muted">${c.freeze_requested_by}</div>` : ""}</td>
        <td class="num">${c.score === null ? "—" : c.score.toFixed(3)}</td>
        <td>${c.typology ? t(c.typology) : "—"}</td>
        <td>${c.assignee || html`<span class="muted">${t("unassigned")}</span>`}</td>
        <td class=${"sla" + (c.overdue ? " late" : "")}>${duration(c.age_s)} / ${c.sla_s ? duration(c.sla_s) : "—"}
          ${c.sla_s ? html`<div class="bar"><div style=${"width:" + Math.min(100, 100 * c.age_s / c.sla_s) + "%"}></div></div>` : ""}</td>
        <td class="small">${c.opened_by}<div class="muted">${when(c.opened_at)}</div></td>
      </tr>`)}</tbody></table></div>
      ${!data.items.length ? html`<p class="muted pad">${t("noItems")}</p>` : ""}
      ${canAct && selected.size ? html`<div class="bulk card" id="bulk">
        <b>${selected.size} ${t("selected")}</b>
        <form onSubmit=${assign} id="bulk-assign"><select name="assignee" id="bulk-assignee">
          <option value=${me.user}>${me.user}</option>
          ${people.filter((p) => p.user !== me.user && p.role !== "viewer").map((p) => html`<option value=${p.user}>${p.user} (${p.role})</option>`)}
          <option value="">— ${t("unassigned")}</option></select>
          <button type="submit" id="bulk-assign-submit">${t("bulkAssign")}</button></form>
        <form onSubmit=${closeFalsePositives} id="bulk-close"><input name="note" id="bulk-note"
          placeholder=${t("note")} required maxlength="2000" />
          <button type="submit" id="bulk-close-submit">${t("bulkClose")}</button></form>
      </div>` : ""}
      <p class="muted small">SLA (h): ${Object.entries(data.sla_hours).map(([k, v]) => `${t(k)} ${v}`).join(" · ")}</p>` : ""}
  </main>`;
}
