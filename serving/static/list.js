// The ranked list: filters in the address (deep-linkable, Enter submits), default at the
// model's review threshold, review/hold badges, counts, compact reasons, local times.
import { html, useEffect, useState, Link, navigate, Decision, Status, Reasons, ErrorLine }
  from "./ui.js";
import { t, when } from "./i18n.js";
import * as api from "./api.js";

const STATUSES = ["none", "open", "under_review", "freeze_requested", "frozen", "released",
  "closed"];
const TYPOLOGIES = ["account_takeover", "shell_business", "mule", "scam_victim",
  "unusual_activity"];

function aboveReview(thresholds) {
  const h = thresholds.histogram;
  if (!h || thresholds.review === null) return null;
  return h.counts.reduce((n, c, i) => n + (h.edges[i] >= thresholds.review - 1e-9 ? c : 0), 0);
}

export function AccountList({ query, thresholds }) {
  const review = thresholds.review ?? 0.5;
  const params = new URLSearchParams(query);
  if (!params.has("min_score")) params.set("min_score", String(+review.toFixed(4)));
  // the form's fields: state, so that a re-render (a page arriving) never undoes typing
  const [form, setForm] = useState(() => ({
    min_score: params.get("min_score"), type: params.get("type") || "",
    case_status: params.get("case_status") || "", typology: params.get("typology") || "",
    foreign_login: params.get("foreign_login") === "true" }));
  const field = (name) => (e) => setForm({ ...form,
    [name]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const [rows, setRows] = useState([]);
  const [cursor, setCursor] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const load = async (after) => {
    setBusy(true);
    setError(null);
    const q = new URLSearchParams(params);
    q.set("limit", "50");
    if (after) q.set("cursor", after);
    try {
      const page = await api.get("/v1/accounts/high-risk?" + q.toString());
      setRows((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor);
    } catch (e) { setError(e); }
    setBusy(false);
  };
  useEffect(() => { load(null); }, []);  // one instance per query (keyed by the app)

  const submit = (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    q.set("min_score", form.min_score || "0");
    for (const name of ["type", "case_status", "typology"]) if (form[name]) q.set(name, form[name]);
    if (form.foreign_login) q.set("foreign_login", "true");
    navigate("/ui/?" + q.toString());
  };
  const nineA = new URLSearchParams({ type: "business", foreign_login: "true",
    min_score: String(+review.toFixed(4)) }).toString();
  const total = aboveReview(thresholds);

  return html`<main class="list">
    <form class="filters" onSubmit=${submit} id="filters">
      <label>${t("minScore")} <input name="min_score" id="min-score" type="number" min="0" max="1"
        step="0.01" value=${form.min_score} onInput=${field("min_score")} /></label>
      <label>${t("type")} <select name="type" value=${form.type} onChange=${field("type")}>
        <option value="">${t("any")}</option><option value="personal">${t("personal")}</option>
        <option value="business">${t("business")}</option></select></label>
      <label>${t("caseStatus")} <select name="case_status" value=${form.case_status} onChange=${field("case_status")}>
        <option value="">${t("any")}</option>
        ${STATUSES.map((s) => html`<option value=${s}>${t(s)}</option>`)}</select></label>
      <label>${t("typology")} <select name="typology" value=${form.typology} onChange=${field("typology")}>
        <option value="">${t("any")}</option>
        ${TYPOLOGIES.map((s) => html`<option value=${s}>${t(s)}</option>`)}</select></label>
      <label class="check"><input name="foreign_login" type="checkbox"
        checked=${form.foreign_login} onChange=${field("foreign_login")} /> ${t("foreignOnly")}</label>
      <button type="submit" id="apply">${t("load")}</button>
      <${Link} href=${"/ui/?" + nineA} id="view-9a" class="preset">${t("view9a")}<//>
    </form>
    <p class="counts" id="counts">
      <strong>${rows.length}</strong> ${t("shown")}${cursor ? html` · ${t("moreAvailable")}` : ""}
      ${total !== null ? html` · <strong>${total}</strong> ${t("aboveReview")}
        (${thresholds.review.toFixed(3)})` : ""}
    </p>
    <${ErrorLine} error=${error} />
    <div class="table-wrap"><table class="grid" id="accounts">
      <thead><tr><th>${t("account")}</th><th>${t("type")}</th><th>${t("score")}</th>
        <th class="wide">${t("trend")}</th><th>${t("reasons")}</th><th>${t("typology")}</th>
        <th>${t("countries")}</th><th>${t("lastActivity")}</th><th>${t("case")}</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${r.account_id} class="row"
          onClick=${() => navigate("/ui/accounts/" + encodeURIComponent(r.account_id))}>
        <td><${Link} href=${"/ui/accounts/" + encodeURIComponent(r.account_id)}>${r.account_id}<//></td>
        <td>${t(r.type)}</td>
        <td class="num"><b>${r.score.toFixed(3)}</b> <${Decision} score=${r.score} thresholds=${thresholds} /></td>
        <td class="wide">${r.trend === null ? html`<span class="muted">${t("new")}</span>`
          : html`<span class=${r.trend >= 0 ? "up" : "down"}>${r.trend >= 0 ? "▲" : "▼"} ${Math.abs(r.trend).toFixed(2)}</span>`}</td>
        <td class="reasons-cell"><${Reasons} items=${r.top_reasons} /></td>
        <td>${t(r.typology)}</td>
        <td>${r.foreign_countries.length ? html`<span class="foreign">${r.foreign_countries.join(", ")}</span>` : html`<span class="muted">—</span>`}</td>
        <td class="nowrap">${when(r.last_activity)}</td>
        <td><${Status} value=${r.case_status} /></td>
      </tr>`)}</tbody>
    </table></div>
    ${!rows.length && !busy && !error ? html`<p class="muted pad">${t("noItems")}</p>` : ""}
    ${cursor ? html`<button id="more" onClick=${() => load(cursor)} disabled=${busy}>${t("more")}</button>` : ""}
  </main>`;
}
