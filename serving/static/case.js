// The case of an account: open it, assign it, move it through the rapid-response states
// (item 9c) with a note, and its history (who, when, which move, outcome, note).
import { html, useEffect, useState, Status, ErrorLine } from "./ui.js";
import { t, when } from "./i18n.js";
import * as api from "./api.js";

const RANK = { viewer: 0, investigator: 1, supervisor: 2, admin: 3 };
// (from, to) -> minimum role; mirrors serving/cases.py (the API checks it again)
const MOVES = {
  "open>under_review": "investigator", "open>closed": "investigator",
  "under_review>freeze_requested": "investigator", "under_review>closed": "investigator",
  "freeze_requested>frozen": "supervisor", "freeze_requested>under_review": "supervisor",
  "frozen>release_requested": "investigator", "frozen>closed": "supervisor",
  "release_requested>released": "supervisor", "release_requested>frozen": "supervisor",
};
const OUTCOMES = ["confirmed_fraud", "confirmed_mule", "false_positive"];
const TYPOLOGIES = ["account_takeover", "shell_business", "mule", "scam_victim", "unusual_activity"];
const TERMINAL = new Set(["released", "closed"]);

function moveLabel(from, to) {
  return from === "freeze_requested" && to === "under_review" ? t("to_under_review_from_freeze")
    : from === "release_requested" && to === "frozen" ? t("to_frozen_from_release")
    : t("to_" + to);
}

export function CasePanel({ account, me, onChange }) {
  const cases = account.cases || [];
  const active = cases.find((c) => !TERMINAL.has(c.status));
  const past = cases.filter((c) => TERMINAL.has(c.status)).reverse();
  const canAct = RANK[me.role] >= RANK.investigator;
  return html`<div class="case-panel card" id="case-panel">
    <h2>${t("case")}</h2>
    ${active ? html`<${ActiveCase} key=${active.case_id + active.status} c=${active} me=${me}
        onChange=${onChange} />`
      : canAct ? html`<${OpenCase} accountId=${account.account_id} onChange=${onChange}
          reasons=${account.risk ? account.risk.top_reasons : []} />`
      : html`<p class="muted">${t("noCaseYet")} ${t("viewerOnly")}</p>`}
    ${past.map((c) => html`<details class="past-case"><summary>#${c.case_id}
      <${Status} value=${c.status} /> ${c.outcome ? t(c.outcome) : ""}</summary>
      <${History} c=${c} /></details>`)}
  </div>`;
}

// the note starts with the model's reasons, so the history keeps why the case was opened
function OpenCase({ accountId, onChange, reasons }) {
  const why = [...new Set(reasons || [])].join("; ");
  const [note, setNote] = useState(why ? why + " — " : "");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const reason = note.trim();
    if (!reason) { setError(new Error(t("noteNeeded"))); return; }
    try {
      await api.post("/v1/cases", { account_id: accountId, reason });
      onChange();
    } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} id="open-case">
    <p class="muted">${t("noCaseYet")}</p>
    <label>${t("note")} <input name="reason" id="open-case-note" required maxlength="2000"
      value=${note} onInput=${(e) => setNote(e.target.value)} /></label>
    <button type="submit" id="open-case-submit">${t("openCase")}</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

function ActiveCase({ c, me, onChange }) {
  const [error, setError] = useState(null);
  const [assignee, setAssignee] = useState(undefined);
  const [target, setTarget] = useState("");
  const moves = c.allowed_transitions.filter((to) => {
    const min = MOVES[c.status + ">" + to];
    if (!min || RANK[me.role] < RANK[min]) return false;
    // maker-checker compares users (people), whichever key they use
    return !((to === "frozen" && c.freeze_requested_by === me.user)
      || (to === "released" && c.release_requested_by === me.user));
  });
  const blockedByMakerChecker = (c.status === "freeze_requested" && c.freeze_requested_by === me.user)
    || (c.status === "release_requested" && c.release_requested_by === me.user);
  useEffect(() => {
    api.get(`/v1/cases/${c.case_id}/assignment`).then((a) => setAssignee(a.assignee))
      .catch(() => setAssignee(null));
  }, [c.case_id]);
  const chosen = target || moves[0] || "";
  const submit = async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const reason = f.note.value.trim();
    if (!reason) { setError(new Error(t("noteNeeded"))); return; }
    const body = { to: chosen, reason };
    if (TERMINAL.has(chosen)) body.outcome = f.outcome.value;
    if (f.typology && f.typology.value) body.typology = f.typology.value;
    try {
      await api.post(`/v1/cases/${c.case_id}/transitions`, body);
      onChange();
    } catch (err) { setError(err); }
  };
  const take = async () => {
    try {
      const r = await api.post("/v1/cases/assignment", { case_ids: [c.case_id], assignee: me.user });
      setAssignee(r.assignee);
    } catch (err) { setError(err); }
  };
  return html`<div id="active-case" data-case-id=${c.case_id} data-status=${c.status}>
    <p><b>#${c.case_id}</b> <${Status} value=${c.status} />
      <span class="muted small"> ${t("openedBy")} ${c.opened_by} · ${when(c.opened_at)}</span></p>
    <p class="small">${t("assignee")}: <b id="assignee">${assignee === undefined ? "…" : assignee || t("unassigned")}</b>
      ${RANK[me.role] >= RANK.investigator && assignee !== me.user
        ? html` <button class="link" id="take-case" onClick=${take}>${t("assignMe")}</button>` : ""}</p>
    ${blockedByMakerChecker ? html`<p class="notice" id="maker-checker">${t("makerChecker")}</p>` : ""}
    ${moves.length ? html`<form onSubmit=${submit} id="move-case" class="move">
      <label>${t("move")} <select name="to" id="move-to" value=${chosen}
          onChange=${(e) => setTarget(e.target.value)}>
        ${moves.map((to) => html`<option value=${to}>${moveLabel(c.status, to)}</option>`)}
      </select></label>
      ${TERMINAL.has(chosen) ? html`<label>${t("outcome")} <select name="outcome" id="move-outcome">
        ${OUTCOMES.map((o) => html`<option value=${o}>${t(o)}</option>`)}</select></label>
        <label>${t("typology")} <select name="typology"><option value="">—</option>
        ${TYPOLOGIES.map((o) => html`<option value=${o}>${t(o)}</option>`)}</select></label>` : ""}
      <label>${t("note")} <input name="note" id="move-note" required maxlength="2000" /></label>
      <button type="submit" id="move-submit">${moveLabel(c.status, chosen)}</button>
    </form>` : RANK[me.role] < RANK.investigator ? html`<p class="muted">${t("viewerOnly")}</p>` : ""}
    <${ErrorLine} error=${error} />
    <${History} c=${c} />
  </div>`;
}

function History({ c }) {
  return html`<h3>${t("caseHistory")}</h3>
    <ol class="history" id=${"history-" + c.case_id}>${c.history.map((h) => html`<li>
      <span class="nowrap small">${when(h.at, true)}</span> ·
      <b>${h.actor}</b> <span class="muted">(${h.role})</span> ·
      ${h.from_status ? html`${t(h.from_status)} → ` : ""}<${Status} value=${h.to_status} />
      ${h.outcome ? html` · <i>${t(h.outcome)}</i>` : ""}
      <div class="note">${h.reason}</div></li>`)}</ol>`;
}
