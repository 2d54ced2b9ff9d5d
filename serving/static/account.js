// One account: profile and reasons, the case and its decisions, a risk/payments/logins chart
// on one time axis, recent payments and logins, and the two-hop network view.
import { html, useEffect, useRef, useState, Link, navigate, Decision, Status, ErrorLine }
  from "./ui.js";
import { t, when, money } from "./i18n.js";
import * as api from "./api.js";
import { CasePanel } from "./case.js";

export function AccountPage({ id, tab, me, thresholds }) {
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const reload = () => api.get("/v1/accounts/" + encodeURIComponent(id)).then(setDetail)
    .catch(setError);
  useEffect(() => { reload(); }, [id]);
  if (error) return html`<main class="pad"><${ErrorLine} error=${error} /></main>`;
  if (!detail) return html`<main class="pad">${t("loading")}</main>`;
  const r = detail.risk;
  const p = detail.profile;
  const base = "/ui/accounts/" + encodeURIComponent(id);
  return html`<main class="account">
    <div class="account-head">
      <h1 id="account-title">${id}</h1>
      ${r ? html`<span class="bigscore">${r.score.toFixed(3)}</span>
        <${Decision} score=${r.score} thresholds=${thresholds} />
        <span>${t(r.typology)}</span> <${Status} value=${r.case_status} />` : ""}
      ${p ? html`<span class="muted">${t(p.type)} · ${t("customer")} ${p.customer_id} ·
        ${t("opened")} ${when(p.opened_at)} · ${t("kyc")} ${p.kyc_country}</span>` : ""}
    </div>
    <nav class="tabs">
      <${Link} href=${base} id="tab-overview" class=${tab === "overview" ? "active" : ""}>${t("overview")}<//>
      <${Link} href=${base + "/network"} id="tab-network" class=${tab === "network" ? "active" : ""}>${t("network")}<//>
    </nav>
    <div class="account-body">
      <section class="main-col">
        ${tab === "network" ? html`<${Network} id=${id} />` : html`<${Overview} d=${detail}
          thresholds=${thresholds} />`}
      </section>
      <aside class="side-col">
        <${CasePanel} account=${detail} me=${me} onChange=${reload} />
      </aside>
    </div>
  </main>`;
}

function Overview({ d, thresholds }) {
  const r = d.risk || { top_reasons: [], foreign_countries: [] };
  const kyc = d.profile ? d.profile.kyc_country : "VN";
  return html`
    <h2>${t("why")}</h2>
    <ul class="why">${[...new Set(r.top_reasons)].map((x) => html`<li>${x}</li>`)}</ul>
    <h2>${t("riskTimeline")}</h2>
    <${Timeline} d=${d} thresholds=${thresholds} kyc=${kyc} />
    <h2>${t("payments")}</h2>
    <div class="table-wrap"><table class="grid compact" id="payments">
      <thead><tr><th>${t("when")}</th><th>${t("direction")}</th><th class="num">${t("amount")}</th>
        <th>${t("counterparties")}</th><th>${t("score")}</th><th>${t("reasons")}</th>
        <th>${t("appSignals")}</th></tr></thead>
      <tbody>${d.payments.slice(0, 30).map((p) => html`<tr data-event-id=${p.event_id}>
        <td class="nowrap">${when(p.ts)}</td>
        <td>${p.direction === "credit" ? "⬇ " + t("paymentIn") : "⬆ " + t("paymentOut")}</td>
        <td class="num">${money(p.amount)} ${p.currency}</td>
        <td><${CounterpartyLink} id=${p.counterparty_account} bank=${p.counterparty_bank} /></td>
        <td class="num">${p.score.toFixed(2)} <${Decision} score=${p.score} thresholds=${thresholds} /></td>
        <td class="small" title=${p.description || ""}>${[...new Set(p.reasons.map((x) => x.text || x.feature))].slice(0, 2).join("; ")}</td>
        <${AppSignals} p=${p} />
      </tr>`)}</tbody></table></div>
    <h2>${t("logins")}</h2>
    <div class="table-wrap"><table class="grid compact" id="logins">
      <thead><tr><th>${t("when")}</th><th>${t("countries")}</th><th>${t("ip")}</th>
        <th>${t("device")}</th><th>${t("success")}</th></tr></thead>
      <tbody>${d.logins.slice(0, 20).map((l) => html`<tr class=${l.country !== kyc ? "foreign-row" : ""}>
        <td class="nowrap">${when(l.ts)}</td>
        <td>${l.country !== kyc ? html`<span class="foreign">⚑ ${l.country}</span>` : l.country}</td>
        <td>${l.ip}</td><td>${l.device_id}</td><td>${l.success ? t("ok") : t("failed")}</td>
      </tr>`)}</tbody></table></div>`;
}

// the bank's app's device-risk signals during the payment: true, false or null (not
// reported: no app session — branch, API, internet banking, credits), which is not false
const SIGNALS = [
  ["on_call", { true: "onCall", false: "noCall", null: "callNotReported" }],
  ["remote_access", { true: "remoteAccess", false: "noRemoteAccess", null: "remoteNotReported" }],
];

function AppSignals({ p }) {
  const value = (name) => (p[name] === true || p[name] === false ? p[name] : null);
  const data = { "data-on-call": String(value("on_call")),
    "data-remote-access": String(value("remote_access")) };
  if (SIGNALS.every(([name]) => value(name) === null)) {
    return html`<td class="small app-signals" ...${data}>
      <span class="muted" title=${t("notReportedHelp")}>${t("notReported")}</span></td>`;
  }
  return html`<td class="small app-signals" ...${data}>${SIGNALS.map(([name, labels]) => {
    const v = value(name);
    return html`<div class=${v === true ? "foreign" : "muted"}
      title=${v === null ? t("notReportedHelp") : name === "remote_access" ? t("remoteAccessHelp") : ""}
      >${v === true ? "⚠ " : ""}${t(labels[String(v)])}</div>`;
  })}</td>`;
}

function CounterpartyLink({ id, bank }) {
  return html`<${Link} href=${"/ui/accounts/" + encodeURIComponent(id)}>${id}<//>
    <span class="muted">@${bank}</span>`;
}

function thresholdLines(thresholds) {
  return {
    id: "thresholds",
    afterDatasetsDraw(chart) {
      const y = chart.scales.y;
      const ctx = chart.ctx;
      for (const [value, color] of [[thresholds.review, "#d98c00"], [thresholds.hold, "#b3261e"]]) {
        if (value === null || value === undefined) continue;
        const py = y.getPixelForValue(value);
        ctx.save();
        ctx.strokeStyle = color;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(chart.chartArea.left, py);
        ctx.lineTo(chart.chartArea.right, py);
        ctx.stroke();
        ctx.restore();
      }
    },
  };
}

const TIME_FMT = () => new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh",
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

// risk (left axis) with the thresholds, payments by amount (right, log) and logins (bottom
// strip, foreign ones as red flags) on one time axis
function Timeline({ d, thresholds, kyc }) {
  const canvas = useRef(null);
  useEffect(() => {
    const fmt = TIME_FMT();
    const xy = (ts, y) => ({ x: Date.parse(ts), y });
    const foreign = d.logins.filter((l) => l.country !== kyc);
    const domestic = d.logins.filter((l) => l.country === kyc);
    const chart = new window.Chart(canvas.current, {
      data: { datasets: [
        { type: "line", label: t("risk"), data: d.timeline.map((p) => xy(p.ts, p.score)),
          borderColor: "#7a1010", backgroundColor: "#7a1010", yAxisID: "y", stepped: false,
          pointRadius: 2, tension: 0 },
        { type: "scatter", label: t("paymentIn"), yAxisID: "amount", pointStyle: "circle",
          backgroundColor: "#1f77b4aa",
          data: d.payments.filter((p) => p.direction === "credit").map((p) => xy(p.ts, Math.max(1, p.amount))) },
        { type: "scatter", label: t("paymentOut"), yAxisID: "amount", pointStyle: "rectRot",
          backgroundColor: "#ff7f0eaa",
          data: d.payments.filter((p) => p.direction !== "credit").map((p) => xy(p.ts, Math.max(1, p.amount))) },
        { type: "scatter", label: t("domesticLogin"), yAxisID: "y", pointStyle: "line",
          borderColor: "#666", pointRadius: 6, data: domestic.map((l) => xy(l.ts, 0.02)) },
        { type: "scatter", label: t("foreignLogin"), yAxisID: "y", pointStyle: "triangle",
          backgroundColor: "#d62728", borderColor: "#d62728", pointRadius: 7,
          data: foreign.map((l) => ({ ...xy(l.ts, 0.02), country: l.country })) },
      ] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          x: { type: "linear", ticks: { callback: (v) => fmt.format(new Date(v)), maxTicksLimit: 8 } },
          y: { min: 0, max: 1, position: "left", title: { display: true, text: t("risk") } },
          amount: { type: "logarithmic", position: "right", grid: { drawOnChartArea: false },
            title: { display: true, text: t("amount") + " (VND)" },
            ticks: { callback: (v) => (String(v)[0] === "1" ? money(v) : "") } },
        },
        plugins: { tooltip: { callbacks: {
          title: (items) => fmt.format(new Date(items[0].parsed.x)),
          label: (c) => c.dataset.yAxisID === "amount" ? `${c.dataset.label}: ${money(c.parsed.y)} VND`
            : c.raw.country ? `${t("foreignLogin")}: ${c.raw.country}` : `${c.dataset.label}: ${c.parsed.y.toFixed(3)}`,
        } } },
      },
      plugins: [thresholdLines(thresholds)],
    });
    return () => chart.destroy();
  }, [d]);
  return html`<div class="chart-box"><canvas ref=${canvas} id="timeline-chart"></canvas></div>`;
}

function Network({ id }) {
  const box = useRef(null);
  const [error, setError] = useState(null);
  const [info, setInfo] = useState(null);
  useEffect(() => {
    let cy = null;
    api.get("/v1/accounts/" + encodeURIComponent(id) + "/network").then((g) => {
      setInfo(g);
      const maxAmount = Math.max(1, ...g.edges.map((e) => e.amount));
      cy = window.cytoscape({
        container: box.current, maxZoom: 1.4, minZoom: 0.2,
        elements: [
          ...g.nodes.map((n) => ({ data: { id: n.id, label: n.id + (n.score !== null ? ` (${n.score.toFixed(2)})` : ""),
            hop: n.hop }, classes: [n.flagged ? "flagged" : "", n.ours ? "ours" : "external",
            n.case_status && n.case_status !== "none" ? "cased" : "", n.hop === 0 ? "center" : ""].join(" ") })),
          ...g.edges.map((e, i) => ({ data: { id: "e" + i, source: e.source, target: e.target,
            w: 1 + 5 * Math.sqrt(e.amount / maxAmount),
            label: e.kind === "money" ? `${e.count}× ${money(e.amount)}`
              : e.kind === "ip" ? t("sharedIp") : t("sharedDevice") },
            classes: e.kind })),
        ],
        style: [
          { selector: "node", style: { label: "data(label)", "font-size": 10, "background-color": "#8aa4c8",
            "text-valign": "bottom", "text-margin-y": 3, width: 22, height: 22 } },
          { selector: "node.external", style: { "background-color": "#c8c8c8", shape: "round-rectangle" } },
          { selector: "node.flagged", style: { "background-color": "#d62728" } },
          { selector: "node.cased", style: { "border-width": 4, "border-color": "#222" } },
          { selector: "node.center", style: { width: 36, height: 36, "font-weight": "bold" } },
          { selector: "edge", style: { width: "data(w)", "curve-style": "bezier", "target-arrow-shape": "triangle",
            "line-color": "#999", "target-arrow-color": "#999", "font-size": 9,
            "text-rotation": "autorotate", color: "#333", "text-background-color": "#fff",
            "text-background-opacity": 0.8 } },
          { selector: "edge.hover", style: { label: "data(label)", "line-color": "#444",
            "target-arrow-color": "#444", "z-index": 9 } },
          { selector: "node.hover", style: { "font-weight": "bold", "z-index": 9 } },
          { selector: "edge.device", style: { "line-style": "dashed", "target-arrow-shape": "none",
            "line-color": "#9467bd", width: 2 } },
          { selector: "edge.ip", style: { "line-style": "dotted", "target-arrow-shape": "none",
            "line-color": "#2ca02c", width: 2 } },
        ],
        // rings by hop: the account in the middle, its counterparties, theirs outside
        layout: { name: "concentric", animate: false, padding: 30, minNodeSpacing: 28,
          concentric: (n) => 3 - n.data("hop"), levelWidth: () => 1 },
      });
      // amounts on hover: the edges of the node under the pointer, or one edge
      cy.on("mouseover", "node", (evt) => evt.target.connectedEdges().addClass("hover"));
      cy.on("mouseout", "node", (evt) => evt.target.connectedEdges().removeClass("hover"));
      cy.on("mouseover", "edge", (evt) => evt.target.addClass("hover"));
      cy.on("mouseout", "edge", (evt) => evt.target.removeClass("hover"));
      cy.edges().filter((e) => e.source().id() === id || e.target().id() === id)
        .sort((a, b) => b.data("w") - a.data("w")).slice(0, 3).addClass("hover");
      cy.on("tap", "node.ours", (evt) => {
        const target = evt.target.id();
        if (target !== id) navigate("/ui/accounts/" + encodeURIComponent(target) + "/network");
      });
      window.cgNetwork = cy;  // for the browser tests and the curious
    }).catch(setError);
    return () => { if (cy) cy.destroy(); };
  }, [id]);
  return html`<div>
    <p class="muted small">${t("networkHelp")}</p>
    <${ErrorLine} error=${error} />
    ${info ? html`<p class="small" id="network-summary">${info.nodes.length} ${t("accountsAbove")} ·
      ${info.nodes.filter((n) => n.flagged).length} ${t("review")}+ ·
      ${info.edges.length} ${t("moneyMoved")}/${t("sharedDevice")}</p>` : ""}
    <div class="network" ref=${box} id="network"></div>
  </div>`;
}
