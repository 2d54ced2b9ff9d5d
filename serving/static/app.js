// The investigators' page: sign in with a key, then the list, an account (case decisions,
// charts, network), the work queues, the model and the reports. Every address is a deep link.
import { html, render, useEffect, useState, Link, navigate, ErrorLine } from "./ui.js";
import { t, lang, setLang } from "./i18n.js";
import * as api from "./api.js";
import { AccountList } from "./list.js";
import { AccountPage } from "./account.js";
import { QueuesPage } from "./queues.js";
import { ModelPage, ReportsPage } from "./model.js";

function Login({ onDone }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const value = e.target.elements.key.value.trim();
    api.setKey(value);
    try {
      onDone(await api.get("/v1/me"));
    } catch (err) {
      api.setKey("");
      setError(err);
    }
  };
  return html`<main class="login"><form onSubmit=${submit} class="card">
    <h1>Cảnh Giác</h1>
    <label>${t("key")} <input name="key" id="login-key" type="password" autocomplete="off"
      size="40" autofocus required /></label>
    <p class="muted small">${t("keyHelp")}</p>
    <button type="submit" id="login-submit">${t("signIn")}</button>
    <${ErrorLine} error=${error} />
  </form></main>`;
}

function Header({ me, onSignOut, path }) {
  const search = (e) => {
    e.preventDefault();
    const id = e.target.elements.q.value.trim();
    if (id) navigate("/ui/accounts/" + encodeURIComponent(id));
  };
  const nav = [["/ui/", "accounts"], ["/ui/queues/mine", "queues"], ["/ui/model", "model"],
               ["/ui/reports", "reports"]];
  const current = (href) => (href === "/ui/" ? path === "/ui/" || path.startsWith("/ui/accounts")
    : path.startsWith(href.replace(/\/mine$/, "")));
  return html`<header>
    <strong class="brand">Cảnh Giác</strong>
    <nav>${nav.map(([href, label]) => html`<${Link} href=${href} id=${"nav-" + label}
      class=${current(href) ? "active" : ""}>${t(label)}<//>`)}</nav>
    <form class="search" onSubmit=${search} role="search">
      <input name="q" id="search" placeholder=${t("search")} aria-label=${t("search")} />
      <button type="submit">${t("go")}</button>
    </form>
    <span class="me" id="me" title=${me.name}>${me.user} · ${me.role}</span>
    <button class="link" id="lang" onClick=${() => { setLang(lang() === "vi" ? "en" : "vi");
      location.reload(); }}>${t("language")}</button>
    <button class="link" id="sign-out" onClick=${onSignOut}>${t("signOut")}</button>
  </header>`;
}

function route(path) {
  let m;
  if ((m = /^\/ui\/accounts\/([^/]+)(?:\/(network))?\/?$/.exec(path)))
    return ["account", decodeURIComponent(m[1]), m[2] || "overview"];
  if ((m = /^\/ui\/queues\/?([a-z]*)\/?$/.exec(path))) return ["queues", m[1] || "mine"];
  if (/^\/ui\/model\/?$/.test(path)) return ["model"];
  if (/^\/ui\/reports\/?$/.test(path)) return ["reports"];
  return ["list"];
}

function App() {
  const [me, setMe] = useState(null);
  const [checked, setChecked] = useState(false);
  const [loc, setLoc] = useState(location.pathname + location.search);
  const [thresholds, setThresholds] = useState(null);

  useEffect(() => {
    const on = () => { setLoc(location.pathname + location.search); window.scrollTo(0, 0); };
    window.addEventListener("popstate", on);
    window.addEventListener("cg-navigate", on);
    document.documentElement.lang = lang();
    document.title = t("title");
    if (!api.key()) { setChecked(true); return; }
    api.get("/v1/me").then(setMe).catch(() => api.setKey("")).finally(() => setChecked(true));
  }, []);
  useEffect(() => {
    if (!me) return;
    api.get("/v1/model/score-histogram?bins=20").then((h) => setThresholds({ ...h.thresholds,
      histogram: h })).catch(() => setThresholds({ review: 0.5, hold: null }));
  }, [me]);

  if (!checked) return null;
  if (!me) return html`<${Login} onDone=${setMe} />`;
  const signOut = () => { api.setKey(""); setMe(null); navigate("/ui/"); };
  const path = loc.split("?")[0];
  const [page, ...args] = route(path);
  let body;
  if (!thresholds) body = html`<p class="pad">${t("loading")}</p>`;
  else if (page === "account")
    body = html`<${AccountPage} key=${args[0]} id=${args[0]} tab=${args[1]} me=${me}
      thresholds=${thresholds} />`;
  else if (page === "queues") body = html`<${QueuesPage} view=${args[0]} me=${me} />`;
  else if (page === "model") body = html`<${ModelPage} thresholds=${thresholds} />`;
  else if (page === "reports") body = html`<${ReportsPage} me=${me} />`;
  else body = html`<${AccountList} key=${loc} query=${loc.split("?")[1] || ""}
    thresholds=${thresholds} />`;
  return html`<${Header} me=${me} onSignOut=${signOut} path=${path} />${body}`;
}

const root = document.getElementById("app");
root.replaceChildren();
render(html`<${App} />`, root);
