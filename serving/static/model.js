// The model page (version, metrics, thresholds in force and what they mean, score histogram)
// and the reports page (police report CSV, periodic results XLSX/PDF).
import { html, useEffect, useRef, useState, ErrorLine } from "./ui.js";
import { t, when } from "./i18n.js";
import * as api from "./api.js";

export function ModelPage({ thresholds }) {
  const [info, setInfo] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api.get("/v1/model").then(setInfo).catch(setError); }, []);
  const th = thresholds;
  const row = (name, value, model, overridden) => html`<tr><th>${t(name)}</th>
    <td id=${"threshold-" + name}>${value === null || value === undefined ? "—" : value.toFixed(4)}</td>
    <td class="small">${overridden ? html`<span class="notice">${t("override")}: ${model === null ? "—" : model.toFixed(4)})</span>` : ""}</td></tr>`;
  return html`<main class="model pad">
    <h1>${t("model")}</h1>
    <${ErrorLine} error=${error} />
    ${info ? html`<p>${t("version")} <b id="model-version">${info.version}</b> · ${when(info.updated_at)}</p>` : ""}
    <h2>${t("thresholds")}</h2>
    <table class="grid narrow">${row("review", th.review, th.model_review, th.review_overridden)}
      ${row("hold", th.hold, th.model_hold, th.hold_overridden)}</table>
    <ul class="meaning"><li>${t("meaningReview")}</li><li>${t("meaningHold")}</li></ul>
    <h2>${t("histogram")}</h2>
    <${Histogram} thresholds=${th} />
    ${info ? html`<h2>${t("metrics")}</h2><table class="grid narrow" id="metrics">
      ${Object.entries(info.metrics).map(([k, v]) => html`<tr><th>${k}</th>
        <td class="num">${typeof v === "number" ? v.toFixed(4) : String(v)}</td></tr>`)}</table>` : ""}
  </main>`;
}

function Histogram({ thresholds }) {
  const canvas = useRef(null);
  useEffect(() => {
    const h = thresholds.histogram;
    if (!h) return undefined;
    const labels = h.counts.map((_, i) => h.edges[i].toFixed(2));
    const color = (i) => (thresholds.hold !== null && h.edges[i] >= thresholds.hold - 1e-9 ? "#b3261e"
      : thresholds.review !== null && h.edges[i] >= thresholds.review - 1e-9 ? "#d98c00" : "#8aa4c8");
    const marks = {
      id: "marks",
      afterDatasetsDraw(chart) {
        const x = chart.scales.x;
        const ctx = chart.ctx;
        for (const [v, c, name] of [[thresholds.review, "#d98c00", t("review")], [thresholds.hold, "#b3261e", t("hold")]]) {
          if (v === null || v === undefined) continue;
          // bins are categories: place the line inside the bin by its fraction
          const pos = v * h.bins - 0.5;
          const px = x.getPixelForValue(Math.floor(pos)) + (pos - Math.floor(pos)) *
            (x.getPixelForValue(1) - x.getPixelForValue(0));
          ctx.save();
          ctx.strokeStyle = c;
          ctx.setLineDash([5, 4]);
          ctx.beginPath();
          ctx.moveTo(px, chart.chartArea.top);
          ctx.lineTo(px, chart.chartArea.bottom);
          ctx.stroke();
          ctx.fillStyle = c;
          ctx.fillText(`${name} ${v.toFixed(3)}`, px + 4, chart.chartArea.top + 10);
          ctx.restore();
        }
      },
    };
    const chart = new window.Chart(canvas.current, {
      type: "bar",
      data: { labels, datasets: [{ label: t("accountsAbove"), data: h.counts,
        backgroundColor: h.counts.map((_, i) => color(i)) }] },
      options: { animation: false, maintainAspectRatio: false, scales: {
        y: { type: "logarithmic", min: 0.5, title: { display: true, text: t("accountsAbove") },
          ticks: { callback: (v) => (Number.isInteger(v) && /^[15]0*$/.test(String(v)) ? v : "") } },
        x: { title: { display: true, text: t("score") } } }, plugins: { legend: { display: false } } },
      plugins: [marks],
    });
    return () => chart.destroy();
  }, [thresholds]);
  return html`<div class="chart-box small-chart"><canvas ref=${canvas} id="histogram"></canvas></div>`;
}

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

export function ReportsPage({ me }) {
  const today = new Date();
  const sixMonths = new Date(today.getTime() - 183 * 86400e3);
  const [msg, setMsg] = useState("");
  const [span, setSpan] = useState({ from: isoDay(sixMonths), to: isoDay(today) });
  const edit = (e) => setSpan({ ...span, [e.target.name]: e.target.value });
  const [error, setError] = useState(null);
  const range = (f) => {
    // whole days in Asia/Ho_Chi_Minh (UTC+7, no daylight saving)
    const from = f.from.value + "T00:00:00+07:00";
    const toDay = new Date(Date.parse(f.to.value + "T00:00:00Z") + 86400e3);
    return [from, isoDay(toDay) + "T00:00:00+07:00"];
  };
  const get = async (makePath) => {
    setError(null);
    setMsg("");
    try { setMsg(`${t("downloaded")}: ${await api.download(makePath())}`); } catch (e) { setError(e); }
  };
  const police = (format) => (e) => {
    e.preventDefault();
    const f = (e.target.form || e.target).elements;
    get(() => {
      const [from, to] = range(f);
      const q = new URLSearchParams({ from, to, format, min_score: f.min_score.value || "0.5" });
      return "/v1/reports/suspicious-accounts?" + q.toString();
    });
  };
  const results = (format) => (e) => {
    e.preventDefault();
    const form = e.target.form || e.target;
    get(() => {
      const [from, to] = range(form.elements);
      return "/v1/reports/results?" + new URLSearchParams({ from, to, format }).toString();
    });
  };
  // one period for both reports, kept across downloads
  const dates = html`<label>${t("from")} <input type="date" name="from" value=${span.from}
      onInput=${edit} onChange=${edit} required /></label>
    <label>${t("to")} <input type="date" name="to" value=${span.to} onInput=${edit}
      onChange=${edit} required /></label>`;
  return html`<main class="reports pad">
    <h1>${t("reports")}</h1>
    <${ErrorLine} error=${error} />
    ${msg ? html`<p class="ok" id="download-msg">${msg}</p>` : ""}
    <form class="card" id="police-form" onSubmit=${police("csv")}>
      <h2>${t("policeReport")}</h2>${dates}
      <label>${t("minScore")} <input type="number" name="min_score" min="0" max="1" step="0.01" value="0.5" /></label>
      <button type="submit" id="police-csv">${t("download")} CSV</button>
      <button type="button" id="police-xlsx" onClick=${police("xlsx")}>${t("download")} XLSX</button>
    </form>
    <form class="card" id="results-form" onSubmit=${results("xlsx")}>
      <h2>${t("resultsReport")}</h2>${dates}
      <button type="submit" id="results-xlsx">${t("download")} XLSX</button>
      <button type="button" id="results-pdf" onClick=${results("pdf")}>${t("download")} PDF</button>
    </form>
  </main>`;
}
