// digibank operations cockpit (运营驾驶舱): a small single-page app without a build step. It
// reads the real API (/v1/...) with the signed-in person's session token or an API key; every
// figure comes from the server. Chinese (zh-CN) by default, English on request.
"use strict";

(function () {
  const TOKEN = "digibank.cockpit.token";
  const WHO = "digibank.cockpit.who";
  const LANG = "digibank.cockpit.lang";
  // Stored as WHO for a key sign-in; shown in the current language.
  const KEY_USER = "\u0000key";

  const I18N = {
    "zh-CN": {
      brand: "digibank 运营驾驶舱",
      signinTitle: "登录运营驾驶舱",
      signinSub: "银行员工专用",
      staff: "员工账号",
      apikey: "API 密钥",
      username: "用户名",
      password: "密码",
      totp: "动态验证码(6位)",
      key: "API 密钥",
      signin: "登录",
      signout: "退出",
      required: "必填",
      totpFormat: "请输入6位数字验证码",
      keyFormat: "API 密钥以 dbk_ 开头",
      enrol: "首次登录需绑定身份验证器:请在验证器中添加以下密钥,然后输入生成的6位验证码再次登录。",
      home: "首页",
      overview: "总览",
      menuOverview: "总览",
      menuCustomers: "客户",
      menuLending: "信贷",
      menuRisk: "风险",
      menuLedger: "账务",
      menuAlerts: "告警",
      business: "经营指标",
      customer: "客户指标",
      operations: "运营指标",
      risk: "风险指标",
      nodata: "暂无数据",
      higher: "越高越好",
      lower: "越低越好",
      updated: "更新于",
      generated: "数据读取时间",
      refreshEvery: "每30秒自动刷新",
      hourly: "近24小时",
      daily: "近30天",
      forbidden: "无权访问:缺少权限 {p}",
      unauthorized: "登录已过期或凭证无效,请重新登录。",
      network: "无法连接服务器,请稍后重试。",
      rateLimited: "请求过于频繁,请稍后重试。",
      failed: "请求失败:{m}",
      signedInAs: "当前用户:{w}",
      keyUser: "API 密钥",
      formula: "计算口径",
      alertState_normal: "正常",
      alertState_pending: "等待中",
      alertState_firing: "告警中",
      alertState_resolved: "已恢复",
    },
    en: {
      brand: "digibank Operations Cockpit",
      signinTitle: "Sign in to the cockpit",
      signinSub: "For bank staff",
      staff: "Staff account",
      apikey: "API key",
      username: "Username",
      password: "Password",
      totp: "Authenticator code (6 digits)",
      key: "API key",
      signin: "Sign in",
      signout: "Sign out",
      required: "Required",
      totpFormat: "Enter the 6-digit code",
      keyFormat: "API keys start with dbk_",
      enrol: "First sign-in: add this secret to your authenticator app, then sign in again with its 6-digit code.",
      home: "Home",
      overview: "Overview",
      menuOverview: "Overview",
      menuCustomers: "Customers",
      menuLending: "Lending",
      menuRisk: "Risk",
      menuLedger: "Ledger",
      menuAlerts: "Alerts",
      business: "Business",
      customer: "Customers",
      operations: "Operations",
      risk: "Risk",
      nodata: "No data",
      higher: "higher is better",
      lower: "lower is better",
      updated: "updated",
      generated: "Read at",
      refreshEvery: "refreshes every 30 s",
      hourly: "last 24 hours",
      daily: "last 30 days",
      forbidden: "Not allowed: the permission {p} is missing",
      unauthorized: "Your sign-in has expired or the credential is not valid. Please sign in again.",
      network: "Cannot reach the server. Please try again.",
      rateLimited: "Too many requests. Please try again shortly.",
      failed: "The request failed: {m}",
      signedInAs: "Signed in: {w}",
      keyUser: "API key",
      formula: "Formula",
      alertState_normal: "Normal",
      alertState_pending: "Pending",
      alertState_firing: "Firing",
      alertState_resolved: "Resolved",
    },
  };

  let lang = localStorage.getItem(LANG) === "en" ? "en" : "zh-CN";
  let timer = null;
  const charts = [];

  function t(key, args) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N["zh-CN"][key] || key;
    for (const [k, v] of Object.entries(args || {})) s = s.replace("{" + k + "}", v);
    return s;
  }

  // DOM without innerHTML: text from the API is always set as text.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || "HTTP " + status);
      this.status = status;
      this.code = body && body.error && body.error.code;
      this.details = (body && body.error && body.error.details) || {};
      // Where in submitted source text the error is (rule compile errors).
      this.position = (body && body.error && body.error.position) || null;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN);
    if (token) headers.Authorization = "Bearer " + token;
    if (body) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, { error: { code: "network", message: t("network") } });
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!response.ok) throw new ApiError(response.status, json);
    return { status: response.status, body: json };
  }

  // Error codes of the API said in the person's language (pages add theirs with
  // Cockpit.errors); a code without words here is shown with the API's own message.
  const ERRORS = { "zh-CN": {}, en: {} };

  // An API error in words, in the person's language.
  function describe(e) {
    if (e.status === 0) return t("network");
    if (e.status === 401) return t("unauthorized");
    if (e.status === 403) return t("forbidden", { p: e.details.permission || "?" });
    if (e.status === 429) return t("rateLimited");
    const words = ERRORS[lang][e.code];
    if (words) return words + (lang === "en" ? " (" : "(") + e.code + (lang === "en" ? ")" : ")");
    return t("failed", { m: e.message });
  }

  function signOut(expired) {
    const token = sessionStorage.getItem(TOKEN);
    if (token && token.startsWith("dbs_") && !expired) api("DELETE", "/v1/sessions/current").catch(() => {});
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(WHO);
    const back = location.hash && !location.hash.startsWith("#/signin") ? location.hash : "#/overview";
    location.hash = "#/signin?next=" + encodeURIComponent(back) + (expired ? "&expired=1" : "");
  }

  function setLang(l) {
    lang = l;
    localStorage.setItem(LANG, l);
    document.documentElement.lang = l;
    render();
  }

  function langSwitch() {
    return h("span", { class: "langs" },
      h("button", { id: "lang-zh", class: "link", onclick: () => setLang("zh-CN") }, "中文"),
      "|",
      h("button", { id: "lang-en", class: "link", onclick: () => setLang("en") }, "English"));
  }

  // ---- sign-in ----------------------------------------------------------------------------

  function signinView(params) {
    let mode = "staff";
    const box = h("div", { class: "signin", id: "signin" });
    const draw = () => {
      box.replaceChildren();
      box.append(h("h1", {}, t("signinTitle")), h("div", { class: "sub" }, t("signinSub")));
      if (params.get("expired")) box.append(h("div", { class: "alert" }, t("unauthorized")));
      const message = h("div", { id: "signin-message" });
      box.append(h("div", { class: "tabs" },
        h("button", { id: "tab-staff", class: mode === "staff" ? "active" : "", onclick: () => { mode = "staff"; draw(); } }, t("staff")),
        h("button", { id: "tab-key", class: mode === "key" ? "active" : "", onclick: () => { mode = "key"; draw(); } }, t("apikey"))));
      const field = (id, label, type) => {
        const input = h("input", { id, type, autocomplete: type === "password" ? "current-password" : "off" });
        const hint = h("div", { class: "hint", id: id + "-hint" });
        return { input, hint, node: h("div", { class: "field" }, h("label", { for: id }, label), input, hint) };
      };
      const fields = mode === "staff"
        ? [field("username", t("username"), "text"), field("password", t("password"), "password"), field("totp", t("totp"), "text")]
        : [field("key", t("key"), "password")];
      const button = h("button", { id: "signin-button", class: "primary", type: "submit" }, t("signin"));
      const form = h("form", {}, message, fields.map((f) => f.node), button);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        // Inline validation before anything is sent.
        let ok = true;
        for (const f of fields) {
          f.hint.textContent = "";
          const v = f.input.value.trim();
          if (!v && f.input.id !== "totp") { f.hint.textContent = t("required"); ok = false; }
          if (f.input.id === "totp" && v && !/^\d{6}$/.test(v)) { f.hint.textContent = t("totpFormat"); ok = false; }
          if (f.input.id === "key" && v && !v.startsWith("dbk_")) { f.hint.textContent = t("keyFormat"); ok = false; }
        }
        if (!ok) return;
        button.disabled = true;
        message.replaceChildren();
        try {
          if (mode === "key") {
            sessionStorage.setItem(TOKEN, fields[0].input.value.trim());
            await api("GET", "/v1/kpis?hours=1&days=1");
            sessionStorage.setItem(WHO, KEY_USER);
          } else {
            sessionStorage.removeItem(TOKEN);
            const [u, p, c] = fields.map((f) => f.input.value.trim());
            const r = await api("POST", "/v1/sessions", { username: u, password: p, totp: c || undefined });
            if (r.body.status !== "signed_in") {
              const secret = (r.body.enrolment && (r.body.enrolment.secret || r.body.enrolment.otpauth_uri)) || "";
              message.append(h("div", { class: "alert info" }, t("enrol"), h("br"), h("code", {}, secret)));
              button.disabled = false;
              return;
            }
            sessionStorage.setItem(TOKEN, r.body.session.token);
            sessionStorage.setItem(WHO, r.body.session.user.display_name || r.body.session.user.username);
          }
          location.hash = params.get("next") || "#/overview";
        } catch (e) {
          if (mode === "key") sessionStorage.removeItem(TOKEN);
          // A key without kpis_read still signs in: the pages say what is missing.
          if (mode === "key" && e.status === 403) {
            sessionStorage.setItem(TOKEN, fields[0].input.value.trim());
            sessionStorage.setItem(WHO, KEY_USER);
            location.hash = params.get("next") || "#/overview";
            return;
          }
          message.append(h("div", { class: "alert", id: "signin-error" }, describe(e)));
          button.disabled = false;
        }
      });
      box.append(form, langSwitch());
    };
    draw();
    return box;
  }

  // ---- the frame: top bar, menu, breadcrumb -------------------------------------------------

  function frame(active, crumbs, body) {
    const menu = ["overview", "alerts", "risk", "lending", "customers", "ledger"].map((id) =>
      [id, "menu" + id[0].toUpperCase() + id.slice(1), PAGES["/" + id] ? "#/" + id : null]);
    return h("div", {},
      h("div", { class: "topbar" },
        h("span", { class: "brand" }, t("brand")),
        h("span", { class: "spacer" }),
        h("span", { class: "who" }, t("signedInAs", { w: sessionStorage.getItem(WHO) === KEY_USER ? t("keyUser") : sessionStorage.getItem(WHO) || "" })),
        h("button", { id: "switch-lang", onclick: () => setLang(lang === "en" ? "zh-CN" : "en") }, lang === "en" ? "中文" : "English"),
        h("button", { id: "signout", onclick: () => signOut(false) }, t("signout"))),
      h("div", { class: "layout" },
        h("nav", { class: "sidemenu" }, menu.map(([id, key, href]) =>
          h("a", { id: "menu-" + id, href: href || "#", class: id === active ? "active" : href ? "" : "disabled" }, t(key)))),
        h("main", { class: "content" },
          h("div", { class: "breadcrumb" }, crumbs.map((c) => h("span", {}, c))),
          body)));
  }

  // ---- values ----------------------------------------------------------------------------------

  // Fen (a decimal string of an integer) to yuan with grouping, without floating point.
  function yuan(minorText) {
    let s = String(minorText);
    const negative = s.startsWith("-");
    if (negative) s = s.slice(1);
    s = s.split(".")[0].padStart(3, "0");
    const whole = s.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + "¥" + whole + "." + s.slice(-2);
  }

  function seconds(v) {
    const s = Number(v);
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 2 : 0) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + (lang === "en" ? " min" : " 分钟");
    if (s < 172800) return (s / 3600).toFixed(1) + (lang === "en" ? " h" : " 小时");
    return (s / 86400).toFixed(1) + (lang === "en" ? " d" : " 天");
  }

  function format(unit, v) {
    if (v === null || v === undefined) return null;
    switch (unit) {
      case "cny_minor": return yuan(v);
      case "ratio": return (Number(v) * 100).toFixed(2) + "%";
      case "seconds": return seconds(v);
      case "products_per_customer": return Number(v).toFixed(2);
      default: return Number(v).toLocaleString(lang);
    }
  }

  function sparkline(el, k) {
    const points = (k.hourly.length >= 2 ? k.hourly : k.daily).filter((p) => p.value !== null);
    if (points.length === 0 || typeof echarts === "undefined") return;
    const chart = echarts.init(el, null, { renderer: "canvas" });
    const good = k.direction === "higher_is_better";
    const rising = points.length > 1 && Number(points[points.length - 1].value) >= Number(points[0].value);
    const color = points.length < 2 ? "#1677ff" : rising === good ? "#389e0d" : "#cf1322";
    chart.setOption({
      animation: false,
      grid: { left: 2, right: 2, top: 4, bottom: 2 },
      xAxis: { type: "category", show: false, data: points.map((p) => p.bucket) },
      yAxis: { type: "value", show: false, scale: true },
      tooltip: { show: false },
      series: [{ type: "line", data: points.map((p) => Number(p.value)), symbol: points.length < 2 ? "circle" : "none",
        lineStyle: { width: 1.5, color }, itemStyle: { color }, areaStyle: { color, opacity: 0.08 } }],
    });
    charts.push(chart);
  }

  // ---- overview -------------------------------------------------------------------------------

  function overviewView() {
    const body = h("div", { id: "overview" });
    load(body, async () => {
      const [r, alerts] = await Promise.all([
        api("GET", "/v1/kpis?hours=24&days=30"),
        api("GET", "/v1/kpi-alerts/rules").catch(() => null),
      ]);
      drawOverview(body, r.body, alerts ? alerts.body.rules : []);
    }, 30000);
    return frame("overview", [t("home"), t("overview")], body);
  }

  function drawOverview(body, data, rules) {
    // The worst alert state per indicator: its badge on the card.
    const badges = {};
    for (const r of rules.filter((r) => r.enabled && (r.state === "firing" || r.state === "pending"))) {
      if (badges[r.kpi] !== "firing") badges[r.kpi] = r.state;
    }
    charts.splice(0).forEach((c) => c.dispose());
    const when = (micros) => new Date(micros / 1000).toLocaleString(lang);
    body.replaceChildren(h("div", { class: "meta" }, t("generated") + " " + when(data.generated_at) + " · " + t("refreshEvery")));
    for (const category of ["business", "customer", "operations", "risk"]) {
      const cards = h("div", { class: "cards" });
      for (const k of data.indicators.filter((i) => i.category === category)) {
        const shown = format(k.unit, k.value);
        const name = lang === "en" ? k.name_en : k.name_zh;
        const definition = lang === "en" ? k.definition_en : k.definition_zh;
        const spark = h("div", { class: "spark" });
        cards.append(h("div", { class: "card", "data-kpi": k.id, title: definition + "\n" + t("formula") + ": " + k.formula },
          h("div", { class: "name" }, h("span", {}, name,
            badges[k.id] ? h("a", { class: "badge " + badges[k.id], href: "#/alerts", title: t("alertState_" + badges[k.id]) }, t("alertState_" + badges[k.id])) : null),
            h("span", { class: "dir", title: k.direction === "higher_is_better" ? t("higher") : t("lower") },
              k.direction === "higher_is_better" ? "↑" : "↓")),
          h("div", { class: shown === null ? "value nodata" : "value", "data-value": k.value === null ? "" : k.value }, shown === null ? t("nodata") : shown),
          spark,
          h("div", { class: "foot" }, k.computed_at ? t("updated") + " " + when(k.computed_at) : "")));
        requestAnimationFrame(() => sparkline(spark, k));
      }
      body.append(h("section", { class: "category", id: "category-" + category }, h("h2", {}, t(category)), cards));
    }
  }

  // ---- routing ---------------------------------------------------------------------------------

  function render() {
    const app = document.getElementById("app");
    document.title = t("brand");
    const [route, query] = (location.hash || "#/overview").slice(1).split("?");
    const params = new URLSearchParams(query || "");
    charts.splice(0).forEach((c) => c.dispose());
    if (route === "/signin" || !sessionStorage.getItem(TOKEN)) {
      clearInterval(timer);
      if (route !== "/signin") {
        location.hash = "#/signin?next=" + encodeURIComponent(location.hash || "#/overview");
        return;
      }
      app.replaceChildren(signinView(params));
      return;
    }
    clearInterval(timer);
    const page = PAGES[route] || PAGES["/overview"];
    app.replaceChildren(page(params));
  }

  // ---- what the pages (the other scripts) use --------------------------------------------------

  const PAGES = { "/overview": overviewView };

  // Loads a page's data into `body`: `work` draws it; a failure is said in words (a 401 goes
  // back to sign-in and returns here after). With `every` (ms) it reloads on a timer.
  function load(body, work, every) {
    const run = async () => {
      try {
        await work();
      } catch (e) {
        if (e.status === 401) return signOut(true);
        body.replaceChildren(h("div", { class: "alert", id: "page-error" }, describe(e)));
      }
    };
    run();
    if (every) timer = setInterval(run, every);
    return run;
  }

  // An action of a person (a button): runs `work`, says a failure in words in `where`.
  async function act(where, work) {
    where.replaceChildren();
    try {
      await work();
      return true;
    } catch (e) {
      if (e.status === 401) { signOut(true); return false; }
      where.replaceChildren(h("div", { class: "alert action-error" }, describe(e)));
      return false;
    }
  }

  function when(micros) {
    return micros === null || micros === undefined ? "" : new Date(micros / 1000).toLocaleString(lang);
  }

  // A table in the Ant Design manner: columns are [header, cell(row) → text or node].
  function table(id, columns, rows, empty) {
    return h("table", { class: "table", id },
      h("thead", {}, h("tr", {}, columns.map(([header]) => h("th", {}, header)))),
      h("tbody", {}, rows.length === 0
        ? h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty || t("nodata")))
        : rows.map((row) => {
          const tr = h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))));
          return tr;
        })));
  }

  function tag(text, kind) {
    return h("span", { class: "tag " + (kind || "") }, text);
  }

  function chart(el, option) {
    if (typeof echarts === "undefined") return null;
    const c = echarts.init(el, null, { renderer: "canvas" });
    c.setOption(Object.assign({ animation: false }, option));
    charts.push(c);
    return c;
  }

  window.Cockpit = {
    h, api, t, describe, frame, format, yuan, when, table, tag, chart, load, act,
    lang: () => lang,
    // Adds a page at #/<id>.
    page(id, view) { PAGES["/" + id] = view; },
    // Adds UI strings: { "zh-CN": {...}, en: {...} }.
    strings(more) { for (const l of ["zh-CN", "en"]) Object.assign(I18N[l], more[l]); },
    // Adds words for API error codes: { "zh-CN": { code: "..." }, en: {...} }.
    errors(more) { for (const l of ["zh-CN", "en"]) Object.assign(ERRORS[l], more[l]); },
  };

  window.addEventListener("hashchange", render);
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  document.documentElement.lang = lang;
  // After every script of the page has run (the pages register themselves).
  document.addEventListener("DOMContentLoaded", render);
})();
