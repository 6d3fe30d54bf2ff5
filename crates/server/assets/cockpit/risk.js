// The Risk page (风险): the case queue with resolve, the outcome mix, the live decision stream,
// the treasury VaR, candidate fraud rings (one drawn as an ECharts graph) and the rule editor
// (rules checked by the API, errors at line:column). Reads /v1/risk/... and /v1/kpis.
"use strict";

(function () {
  const C = window.Cockpit;
  const { h, api, t } = C;

  C.strings({
    "zh-CN": {
      riskTitle: "风险",
      caseQueue: "待处理案件",
      caseId: "案件",
      customerId: "客户",
      score: "风险分",
      reasons: "原因",
      openedAt: "创建时间",
      note: "备注",
      confirmFraud: "确认欺诈",
      falsePositive: "误报",
      resolvedOk: "案件 {id} 已处理:{r}",
      resolution_confirmed_fraud: "确认欺诈",
      resolution_false_positive: "误报",
      outcomeMix: "决策结果分布(近30天)",
      outcome_allow: "通过",
      outcome_review: "人工审核",
      outcome_reject: "拒绝",
      kind: "事件类型",
      recentDecisions: "实时决策流",
      decidedAt: "决策时间",
      outcome: "结果",
      elapsed: "耗时",
      varTitle: "资金业务风险价值(VaR 99%,1天)",
      varNone: "尚未记录 VaR(POST /v1/risk/market/var,record = true)",
      rings: "疑似欺诈团伙",
      ringCustomers: "客户数",
      ringFlagged: "已标记",
      ringDevices: "设备",
      ringIps: "IP",
      ringPhones: "电话",
      ringAccounts: "账户",
      ringNone: "关系图中暂无疑似团伙",
      ringLegend_customer: "客户",
      ringLegend_flagged: "已标记客户",
      ringLegend_device: "设备",
      ringLegend_phone: "电话",
      ringLegend_ip: "IP",
      ringLegend_account: "账户",
      ruleEditor: "规则编辑器",
      ruleVersion: "基于版本",
      ruleActive: "(生效中)",
      ruleCheck: "校验并保存为新版本",
      ruleSaved: "已保存为版本 {v}(未生效;生效需复核)",
      ruleJsonError: "JSON 格式错误:{m}",
      ruleErrorAt: "第 {l} 行第 {c} 列:{m}",
      backtest: "回测",
      backtestResult: "回测 {n} 笔:通过 {a},审核 {r},拒绝 {x};与生效版本结果不同 {d} 笔",
    },
    en: {
      riskTitle: "Risk",
      caseQueue: "Open cases",
      caseId: "Case",
      customerId: "Customer",
      score: "Score",
      reasons: "Reasons",
      openedAt: "Opened",
      note: "Note",
      confirmFraud: "Confirm fraud",
      falsePositive: "False positive",
      resolvedOk: "Case {id} resolved: {r}",
      resolution_confirmed_fraud: "confirmed fraud",
      resolution_false_positive: "false positive",
      outcomeMix: "Outcome mix (30 days)",
      outcome_allow: "Allow",
      outcome_review: "Review",
      outcome_reject: "Reject",
      kind: "Event",
      recentDecisions: "Live decisions",
      decidedAt: "Decided",
      outcome: "Outcome",
      elapsed: "Time",
      varTitle: "Treasury VaR (99%, 1 day)",
      varNone: "No VaR recorded yet (POST /v1/risk/market/var with record = true)",
      rings: "Candidate fraud rings",
      ringCustomers: "Customers",
      ringFlagged: "Flagged",
      ringDevices: "Devices",
      ringIps: "IPs",
      ringPhones: "Phones",
      ringAccounts: "Accounts",
      ringNone: "No candidate ring in the relationship graph",
      ringLegend_customer: "Customer",
      ringLegend_flagged: "Flagged customer",
      ringLegend_device: "Device",
      ringLegend_phone: "Phone",
      ringLegend_ip: "IP",
      ringLegend_account: "Account",
      ruleEditor: "Rule editor",
      ruleVersion: "Based on version",
      ruleActive: " (active)",
      ruleCheck: "Check and save as a new version",
      ruleSaved: "Saved as version {v} (not active; activation needs a second person)",
      ruleJsonError: "Not valid JSON: {m}",
      ruleErrorAt: "Line {l}, column {c}: {m}",
      backtest: "Backtest",
      backtestResult: "Backtest of {n}: {a} allow, {r} review, {x} reject; {d} differ from the active version",
    },
  });

  C.errors({
    "zh-CN": {
      case_already_resolved: "该案件已被处理",
      case_not_found: "案件不存在",
      invalid_rule: "规则有误",
    },
    en: {
      case_already_resolved: "The case was already resolved",
      case_not_found: "No such case",
      invalid_rule: "The rule is not valid",
    },
  });

  const OUTCOME_KIND = { allow: "green", review: "orange", reject: "red" };

  function view() {
    const body = h("div", { id: "risk" });
    const message = h("div", { id: "risk-message" });
    const editor = h("section", { class: "panel", id: "rule-editor-panel" });
    let editorLoaded = false;
    const reload = C.load(body, async () => {
      const [cases, mix, recent, rings, kpis] = await Promise.all([
        api("GET", "/v1/risk/cases?status=open&limit=50"),
        api("GET", "/v1/risk/outcomes?days=30"),
        api("GET", "/v1/risk/decisions?limit=20"),
        api("GET", "/v1/risk/rings"),
        api("GET", "/v1/kpis?hours=1&days=30").catch(() => null),
      ]);
      draw(cases.body.cases, mix.body.counts, recent.body.decisions, rings.body, kpis ? kpis.body : null);
      if (!editorLoaded) { editorLoaded = true; ruleEditor(editor); }
    }, 20000);

    function draw(cases, counts, decisions, rings, kpis) {
      const caseTable = C.table("risk-cases", [
        [t("caseId"), (c) => "#" + c.id],
        [t("customerId"), (c) => c.customer_id],
        [t("score"), (c) => c.score.toFixed(1)],
        [t("reasons"), (c) => c.reasons.slice(0, 3).map((r) => r.explanation).join(";")],
        [t("openedAt"), (c) => C.when(c.opened_at)],
        [t("actions"), (c) => {
          const note = h("input", { class: "case-note", placeholder: t("note") });
          const resolve = (resolution) => C.act(message, async () => {
            await api("POST", "/v1/risk/cases/" + c.id + "/resolve", { resolution, note: note.value });
            message.replaceChildren(h("div", { class: "ok-message", id: "risk-ok" }, t("resolvedOk", { id: c.id, r: t("resolution_" + resolution) })));
            reload();
          });
          return h("span", { class: "row-actions" }, note,
            h("button", { class: "button danger-button confirm-fraud", onclick: () => resolve("confirmed_fraud") }, t("confirmFraud")),
            h("button", { class: "button false-positive", onclick: () => resolve("false_positive") }, t("falsePositive")));
        }],
      ], cases);
      for (const [i, c] of cases.entries()) if (caseTable.tBodies[0].rows[i]) caseTable.tBodies[0].rows[i].setAttribute("data-case", c.id);

      const mixChart = h("div", { class: "chart", id: "outcome-chart" });
      const totals = {};
      for (const c of counts) totals[c.outcome] = (totals[c.outcome] || 0) + c.count;
      const varKpi = kpis && kpis.indicators.find((k) => k.id === "treasury_var_99");
      const varChart = h("div", { class: "chart", id: "var-chart" });
      const decisionTable = C.table("risk-decisions", [
        [t("decidedAt"), (d) => C.when(d.decided_at)],
        [t("kind"), (d) => d.kind],
        [t("customerId"), (d) => d.customer_id],
        [t("outcome"), (d) => C.tag(t("outcome_" + d.outcome), OUTCOME_KIND[d.outcome])],
        [t("score"), (d) => d.score.toFixed(1)],
        [t("reasons"), (d) => (d.reasons[0] || {}).explanation || ""],
        [t("elapsed"), (d) => (d.elapsed_micros / 1000).toFixed(1) + " ms"],
      ], decisions);
      const graph = h("div", { class: "chart tall", id: "ring-graph" });
      const ringTable = C.table("risk-rings", [
        [t("ringCustomers"), (r) => String(r.customers)],
        [t("ringFlagged"), (r) => String(r.flagged)],
        [t("ringDevices"), (r) => String(r.devices)],
        [t("ringPhones"), (r) => String(r.phones)],
        [t("ringIps"), (r) => String(r.ips)],
        [t("ringAccounts"), (r) => String(r.accounts)],
      ], rings.rings, t("ringNone"));

      body.replaceChildren(
        message,
        h("section", { class: "panel" }, h("h2", {}, t("caseQueue") + " (" + cases.length + ")"), caseTable),
        h("div", { class: "grid2" },
          h("section", { class: "panel" }, h("h2", {}, t("outcomeMix")),
            h("div", { class: "stats", id: "outcome-stats" }, ["allow", "review", "reject"].map((o) =>
              h("div", { class: "stat", "data-outcome": o }, h("div", { class: "label" }, t("outcome_" + o)), h("div", { class: "number" }, String(totals[o] || 0))))),
            mixChart),
          h("section", { class: "panel" }, h("h2", {}, t("varTitle")),
            h("div", { class: "stats" }, h("div", { class: "stat" }, varKpi && varKpi.value !== null
              ? h("div", { class: "number", id: "var-value" }, C.format("cny_minor", varKpi.value))
              : h("div", { class: "muted", id: "var-value" }, t("varNone")))),
            varChart)),
        h("section", { class: "panel" }, h("h2", {}, t("recentDecisions")), decisionTable),
        h("section", { class: "panel" }, h("h2", {}, t("rings")), ringTable, graph),
        editor);

      requestAnimationFrame(() => {
        const kinds = [...new Set(counts.map((c) => c.kind))];
        C.chart(mixChart, {
          tooltip: { trigger: "axis" },
          legend: { data: ["allow", "review", "reject"].map((o) => t("outcome_" + o)) },
          grid: { left: 110, right: 20, top: 30, bottom: 20 },
          xAxis: { type: "value" },
          yAxis: { type: "category", data: kinds },
          series: ["allow", "review", "reject"].map((o) => ({
            name: t("outcome_" + o), type: "bar", stack: "all",
            itemStyle: { color: { allow: "#52c41a", review: "#faad14", reject: "#ff4d4f" }[o] },
            data: kinds.map((k) => (counts.find((c) => c.kind === k && c.outcome === o) || { count: 0 }).count),
          })),
        });
        const points = varKpi ? varKpi.daily.filter((p) => p.value !== null) : [];
        if (points.length) {
          C.chart(varChart, {
            tooltip: { trigger: "axis" },
            grid: { left: 90, right: 20, top: 20, bottom: 30 },
            xAxis: { type: "category", data: points.map((p) => new Date(p.bucket / 1000).toLocaleDateString(C.lang())) },
            yAxis: { type: "value", axisLabel: { formatter: (v) => C.format("cny_minor", String(Math.round(v))) } },
            series: [{ type: "line", data: points.map((p) => Number(p.value)), areaStyle: { opacity: 0.1 } }],
          });
        }
        drawRing(graph, rings.graph);
      });
    }

    return C.frame("risk", [t("home"), t("riskTitle")], body);
  }

  function drawRing(el, g) {
    if (!g) { el.replaceChildren(h("div", { class: "muted" }, t("ringNone"))); el.classList.remove("tall"); return; }
    const categories = ["customer", "flagged", "device", "phone", "ip", "account"];
    const colors = ["#1677ff", "#cf1322", "#faad14", "#13c2c2", "#722ed1", "#8c8c8c"];
    C.chart(el, {
      tooltip: { formatter: (p) => p.dataType === "node" ? p.data.name : "" },
      legend: { data: categories.map((c) => t("ringLegend_" + c)) },
      color: colors,
      series: [{
        type: "graph", layout: "force", roam: true, draggable: true,
        force: { repulsion: 60, edgeLength: 40, gravity: 0.08 },
        categories: categories.map((c) => ({ name: t("ringLegend_" + c) })),
        label: { show: false },
        data: g.nodes.map((n) => ({
          name: n.label,
          category: n.kind === "customer" ? (n.flag ? 1 : 0) : categories.indexOf(n.kind),
          symbolSize: n.kind === "customer" ? 12 : 8,
        })),
        links: g.edges.map(([a, b]) => ({ source: a, target: b })),
        lineStyle: { color: "#bfbfbf", width: 1 },
      }],
    });
  }

  // The rule editor: the rules of a stored version as JSON; saving stores a new (inactive)
  // version after the API has type-checked every expression, or shows where it failed.
  async function ruleEditor(panel) {
    const error = h("div", { id: "rule-set-error" });
    const result = h("div", { id: "rule-set-result" });
    const area = h("textarea", { id: "rule-set-source", rows: "16", spellcheck: "false" });
    const version = h("select", { id: "rule-set-version" });
    const sets = (await api("GET", "/v1/risk/rule-sets")).body;
    for (const s of sets.rule_sets.slice().reverse()) {
      version.append(h("option", { value: String(s.version), selected: s.active }, "v" + s.version + " " + s.name + (s.active ? t("ruleActive") : "")));
    }
    const show = async () => {
      if (!version.value) return;
      const rs = (await api("GET", "/v1/risk/rule-sets/" + version.value)).body.rule_set;
      area.value = JSON.stringify({ name: rs.name, thresholds: rs.thresholds, rules: rs.rules }, null, 2);
    };
    version.addEventListener("change", () => C.act(error, show));
    const save = h("button", { id: "rule-set-save", class: "button primary-button" }, t("ruleCheck"));
    save.addEventListener("click", async () => {
      result.replaceChildren();
      error.replaceChildren();
      let input;
      try { input = JSON.parse(area.value); } catch (e) {
        error.replaceChildren(h("div", { class: "alert" }, t("ruleJsonError", { m: e.message })));
        return;
      }
      try {
        const v = (await api("POST", "/v1/risk/rule-sets", input)).body.rule_set.version;
        result.replaceChildren(h("div", { class: "ok-message", id: "rule-set-saved" }, t("ruleSaved", { v })));
        version.prepend(h("option", { value: String(v) }, "v" + v + " " + (input.name || "")));
        version.value = String(v);
      } catch (e) {
        // The API type-checks every expression: a rule error says where, as line:column.
        const box = h("div", { class: "alert" }, C.describe(e));
        if (e.position) {
          box.append(h("div", { class: "error-at", id: "rule-error-at" },
            t("ruleErrorAt", { l: e.position.line, c: e.position.column, m: e.message })));
        }
        error.replaceChildren(box);
      }
    });
    const backtest = h("button", { id: "rule-set-backtest", class: "button" }, t("backtest"));
    backtest.addEventListener("click", () => C.act(error, async () => {
      const r = (await api("POST", "/v1/risk/rule-sets/" + version.value + "/backtest")).body;
      const report = r.report || r;
      const o = report.after || {};
      const changed = Object.values(report.transitions || {}).reduce((a, b) => a + b, 0);
      result.replaceChildren(h("div", { class: "ok-message", id: "backtest-result" }, t("backtestResult", {
        n: report.events, a: o.allow, r: o.review, x: o.reject, d: changed,
      })));
    }));
    panel.replaceChildren(h("h2", {}, t("ruleEditor")),
      h("div", { class: "toolbar" }, h("label", {}, t("ruleVersion")), version, save, backtest),
      error, result, area);
    await show();
  }

  C.page("risk", view);
})();
