// Preact + htm (no build step): html`<div>…</div>` templates, hooks, and small shared pieces.
import { h, render } from "preact";
import { useEffect, useMemo, useRef, useState, useCallback } from "preact/hooks";
import htm from "htm";
import { t } from "./i18n.js";

export const html = htm.bind(h);
export { render, useEffect, useMemo, useRef, useState, useCallback };

export function navigate(path) {
  history.pushState(null, "", path);
  window.dispatchEvent(new Event("cg-navigate"));
}

// an in-page link: no reload, deep-linkable address
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

export function Decision({ score, thresholds }) {
  if (score === null || score === undefined || !thresholds) return null;
  if (thresholds.hold !== null && score >= thresholds.hold)
    return html`<span class="badge hold" title=${t("meaningHold")}>${t("hold")}</span>`;
  if (thresholds.review !== null && score >= thresholds.review)
    return html`<span class="badge review" title=${t("meaningReview")}>${t("review")}</span>`;
  return null;
}

export function Status({ value }) {
  return html`<span class=${"status s-" + value}>${t(value)}</span>`;
}

export function ErrorLine({ error }) {
  return error ? html`<p class="err" role="alert">${String(error.message || error)}</p>` : null;
}

// reasons, de-duplicated; the first in the cell, all of them on hover and on click
export function Reasons({ items }) {
  const [open, setOpen] = useState(false);
  const unique = [...new Set(items || [])];
  if (!unique.length) return html`<span class="muted">—</span>`;
  const full = unique.join("\n");
  if (open || unique.length === 1)
    return html`<ul class="reasons" onClick=${(e) => { e.stopPropagation(); setOpen(false); }}>
      ${unique.map((r) => html`<li>${r}</li>`)}</ul>`;
  return html`<span class="reason-line" title=${full}
      onClick=${(e) => { e.stopPropagation(); setOpen(true); }}><span
      class="reason-compact">${unique[0]}</span><span class="more-tag">+${unique.length - 1}</span></span>`;
}
