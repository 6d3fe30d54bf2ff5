// The Alerts page (告警): threshold rules on the KPIs with their states (firing, pending,
// resolved, normal), the history of transitions, the rule editor and silences. Reads and writes
// /v1/kpi-alerts/...; the indicators come from /v1/kpis.
"use strict";

(function () {
  const C = window.Cockpit;
  const { h, api, t } = C;

  C.strings({
    "zh-CN": {
      alerts: "告警",
      alertRules: "告警规则",
      alertHistory: "告警历史",
      newRule: "新建规则",
      editRule: "编辑规则",
      ruleName: "规则名称",
      ruleKpi: "监控指标",
      ruleCondition: "触发条件",
      ruleComparator: "比较",
      above: "高于",
      below: "低于",
      threshold: "阈值",
      thresholdHint: "按指标单位填写:金额为分,比率为小数(0.05 = 5%),时长为秒",
      forSecs: "持续时间(秒)",
      forHint: "条件持续满足该时长后才告警;0 表示立即",
      severity: "级别",
      sev_critical: "严重",
      sev_warning: "警告",
      sev_info: "提示",
      enabled: "启用",
      disabled: "已停用",
      state: "状态",
      since: "状态开始",
      currentValue: "当前值",
      actions: "操作",
      edit: "编辑",
      remove: "删除",
      confirmRemove: "确定删除规则「{n}」?历史记录会保留。",
      silence: "静默",
      unsilence: "取消静默",
      silencedUntil: "静默至 {u}({b}:{r})",
      silenceFor: "静默时长",
      silenceReason: "静默原因",
      hours: "{n} 小时",
      days: "{n} 天",
      save: "保存",
      cancel: "取消",
      time: "时间",
      rule: "规则",
      transition: "状态变化",
      value: "指标值",
      cause: "原因",
      cause_evaluation: "定时评估",
      cause_edit: "规则修改",
      silencedTag: "静默中",
      all: "全部",
      preview: "即:{v}",
      previewInvalid: "请输入数字,如 0.03",
    },
    en: {
      alerts: "Alerts",
      alertRules: "Alert rules",
      alertHistory: "History",
      newRule: "New rule",
      editRule: "Edit rule",
      ruleName: "Name",
      ruleKpi: "Indicator",
      ruleCondition: "Condition",
      ruleComparator: "Comparison",
      above: "above",
      below: "below",
      threshold: "Threshold",
      thresholdHint: "In the indicator's unit: money in fen, ratios as fractions (0.05 = 5%), durations in seconds",
      forSecs: "For (seconds)",
      forHint: "Fires once the condition has held this long; 0 fires at once",
      severity: "Severity",
      sev_critical: "Critical",
      sev_warning: "Warning",
      sev_info: "Info",
      enabled: "Enabled",
      disabled: "Disabled",
      state: "State",
      since: "Since",
      currentValue: "Current value",
      actions: "Actions",
      edit: "Edit",
      remove: "Delete",
      confirmRemove: "Delete the rule “{n}”? Its history is kept.",
      silence: "Silence",
      unsilence: "Unsilence",
      silencedUntil: "Silenced until {u} ({b}: {r})",
      silenceFor: "Silence for",
      silenceReason: "Reason",
      hours: "{n} h",
      days: "{n} d",
      save: "Save",
      cancel: "Cancel",
      time: "Time",
      rule: "Rule",
      transition: "Transition",
      value: "Value",
      cause: "Cause",
      cause_evaluation: "evaluation",
      cause_edit: "rule edited",
      silencedTag: "silenced",
      all: "All",
      preview: "i.e. {v}",
      previewInvalid: "Enter a number such as 0.03",
    },
  });

  C.errors({
    "zh-CN": {
      unknown_kpi: "没有这个指标",
      invalid_threshold: "阈值必须是数字,如 0.03",
      invalid_rule: "规则填写有误:名称 1–200 字,持续时间 0–604800 秒",
      invalid_silence: "静默设置有误:结束时间须在未来 90 天内,原因 1–500 字",
      alert_rule_not_found: "规则不存在(可能已被删除)",
      alert_rule_changed: "规则刚被他人修改,请刷新后重试",
      invalid_request: "请求内容有误",
    },
    en: {
      unknown_kpi: "There is no such indicator",
      invalid_threshold: "The threshold must be a number such as 0.03",
      invalid_rule: "The rule is not valid: a name of 1–200 characters, a duration of 0–604800 seconds",
      invalid_silence: "The silence is not valid: an end within the next 90 days, a reason of 1–500 characters",
      alert_rule_not_found: "The rule does not exist (it may have been deleted)",
      alert_rule_changed: "Someone changed the rule meanwhile; reload and try again",
      invalid_request: "The request is not valid",
    },
  });

  const STATE_KIND = { firing: "red", pending: "orange", resolved: "green", normal: "" };
  const SEV_KIND = { critical: "red", warning: "orange", info: "blue" };

  function kpiName(k) {
    return C.lang() === "en" ? k.name_en : k.name_zh;
  }

  function condition(rule) {
    const v = C.format(rule.unit, rule.threshold);
    return (rule.comparator === "above" ? "> " : "< ") + v + (rule.for_secs > 0 ? " · " + rule.for_secs + "s" : "");
  }

  function view(params) {
    const body = h("div", { id: "alerts" });
    let kpis = [];
    let filter = params.get("state") || "all";
    // Kept across the reloads of the timer, so an open form is not lost.
    const message = h("div", { id: "alerts-message" });
    const editor = h("div", { id: "rule-editor" });
    const reload = C.load(body, async () => {
      const [rules, events, k] = await Promise.all([
        api("GET", "/v1/kpi-alerts/rules"),
        api("GET", "/v1/kpi-alerts/events?limit=50"),
        kpis.length ? Promise.resolve(null) : api("GET", "/v1/kpis?hours=1&days=1"),
      ]);
      if (k) kpis = k.body.indicators;
      draw(rules.body.rules, events.body.events);
    }, 15000);

    function draw(rules, events) {
      const counts = { all: rules.length, firing: 0, pending: 0, resolved: 0, normal: 0 };
      for (const r of rules) counts[r.state] += 1;
      const tabs = h("div", { class: "tabs", id: "alert-tabs" }, ["all", "firing", "pending", "resolved", "normal"].map((s) =>
        h("button", { id: "alert-tab-" + s, class: filter === s ? "active" : "", onclick: () => { filter = s; draw(rules, events); } },
          (s === "all" ? t("all") : t("alertState_" + s)) + " " + counts[s])));
      const shown = rules.filter((r) => filter === "all" || r.state === filter);
      const rulesTable = C.table("alert-rules", [
        [t("ruleName"), (r) => h("span", {}, r.name, r.enabled ? null : C.tag(t("disabled"), ""))],
        [t("ruleKpi"), (r) => C.lang() === "en" ? r.kpi_name_en : r.kpi_name_zh],
        [t("ruleCondition"), (r) => condition(r)],
        [t("severity"), (r) => C.tag(t("sev_" + r.severity), SEV_KIND[r.severity])],
        [t("state"), (r) => h("span", { class: "state", "data-state": r.state },
          C.tag(t("alertState_" + r.state), STATE_KIND[r.state]),
          r.silenced ? C.tag(t("silencedTag"), "gray") : null)],
        [t("since"), (r) => C.when(r.state_since)],
        [t("currentValue"), (r) => r.current_value === null ? t("nodata") : C.format(r.unit, r.current_value)],
        [t("actions"), (r) => h("span", { class: "row-actions" },
          h("button", { class: "link edit", onclick: () => openEditor(editor, message, r) }, t("edit")),
          r.silenced
            ? h("button", { class: "link unsilence", onclick: () => C.act(message, async () => {
              await api("DELETE", "/v1/kpi-alerts/rules/" + r.id + "/silence");
              reload();
            }) }, t("unsilence"))
            : h("button", { class: "link silence", onclick: () => openSilence(editor, message, r) }, t("silence")),
          h("button", { class: "link danger remove", onclick: () => {
            if (!window.confirm(t("confirmRemove", { n: r.name }))) return;
            C.act(message, async () => { await api("DELETE", "/v1/kpi-alerts/rules/" + r.id); reload(); });
          } }, t("remove")),
          r.silenced && r.silence ? h("div", { class: "muted" }, t("silencedUntil", { u: C.when(r.silence.until), b: r.silence.by, r: r.silence.reason })) : null)],
      ], shown);
      for (const [i, r] of shown.entries()) rulesTable.tBodies[0].rows[i].setAttribute("data-rule", r.id);
      const history = C.table("alert-events", [
        [t("time"), (e) => C.when(e.at)],
        [t("rule"), (e) => e.rule_name],
        [t("transition"), (e) => h("span", { "data-to": e.to }, C.tag(t("alertState_" + e.from), STATE_KIND[e.from]), " → ",
          C.tag(t("alertState_" + e.to), STATE_KIND[e.to]))],
        [t("value"), (e) => {
          const k = kpis.find((k) => k.id === e.kpi);
          return e.value === null ? "—" : k ? C.format(k.unit, e.value) : e.value;
        }],
        [t("cause"), (e) => h("span", {}, t("cause_" + e.cause), e.silenced ? C.tag(t("silencedTag"), "gray") : null)],
      ], events);
      body.replaceChildren(
        h("section", { class: "panel" },
          h("div", { class: "panel-head" }, h("h2", {}, t("alertRules")),
            h("button", { id: "new-rule", class: "button primary-button", onclick: () => openEditor(editor, message, null) }, t("newRule"))),
          message, editor, tabs, rulesTable),
        h("section", { class: "panel" }, h("h2", {}, t("alertHistory")), history));
    }

    function field(label, input, hint) {
      return h("div", { class: "field inline" }, h("label", {}, label), input, hint || null);
    }

    function openEditor(editor, message, rule) {
      const name = h("input", { id: "rule-name", value: rule ? rule.name : "" });
      const kpi = h("select", { id: "rule-kpi" }, kpis.map((k) =>
        h("option", { value: k.id, selected: rule ? rule.kpi === k.id : false }, kpiName(k))));
      const comparator = h("select", { id: "rule-comparator" },
        ["above", "below"].map((c) => h("option", { value: c, selected: rule ? rule.comparator === c : false }, t(c))));
      const threshold = h("input", { id: "rule-threshold", value: rule ? rule.threshold : "" });
      const preview = h("div", { class: "hint neutral", id: "rule-threshold-preview" });
      const forSecs = h("input", { id: "rule-for", type: "number", min: "0", value: rule ? String(rule.for_secs) : "0" });
      const severity = h("select", { id: "rule-severity" },
        ["critical", "warning", "info"].map((s) => h("option", { value: s, selected: rule ? rule.severity === s : s === "warning" }, t("sev_" + s))));
      const enabled = h("input", { id: "rule-enabled", type: "checkbox" });
      enabled.checked = rule ? rule.enabled : true;
      const error = h("div", { id: "rule-error" });
      // Shows the threshold in the indicator's unit as the person types (inline validation).
      const update = () => {
        const k = kpis.find((k) => k.id === kpi.value);
        const v = threshold.value.trim();
        if (!v) { preview.textContent = t("thresholdHint"); preview.className = "hint neutral"; return; }
        if (!/^-?\d+(\.\d+)?$/.test(v)) { preview.textContent = t("previewInvalid"); preview.className = "hint"; return; }
        preview.textContent = t("preview", { v: k ? C.format(k.unit, v) : v });
        preview.className = "hint neutral";
      };
      threshold.addEventListener("input", update);
      kpi.addEventListener("change", update);
      update();
      const save = h("button", { id: "rule-save", class: "button primary-button" }, t("save"));
      save.addEventListener("click", () => C.act(error, async () => {
        const body = {
          name: name.value, kpi: kpi.value, comparator: comparator.value, threshold: threshold.value.trim(),
          for_secs: Number(forSecs.value || 0), severity: severity.value, enabled: enabled.checked,
        };
        if (rule) await api("PUT", "/v1/kpi-alerts/rules/" + rule.id, body);
        else await api("POST", "/v1/kpi-alerts/rules", body);
        editor.replaceChildren();
        reload();
      }));
      editor.replaceChildren(h("div", { class: "form-card", id: "rule-form" },
        h("h3", {}, rule ? t("editRule") : t("newRule")), error,
        field(t("ruleName"), name),
        field(t("ruleKpi"), kpi),
        field(t("ruleComparator"), comparator),
        field(t("threshold"), threshold, preview),
        field(t("forSecs"), forSecs, h("div", { class: "hint neutral" }, t("forHint"))),
        field(t("severity"), severity),
        field(t("enabled"), enabled),
        h("div", { class: "form-actions" }, save,
          h("button", { class: "button", id: "rule-cancel", onclick: () => editor.replaceChildren() }, t("cancel")))));
      message.replaceChildren();
    }

    function openSilence(editor, message, rule) {
      const duration = h("select", { id: "silence-for" },
        [[1, "hours"], [4, "hours"], [24, "hours"], [7, "days"]].map(([n, unit]) =>
          h("option", { value: String(unit === "days" ? n * 24 : n) }, t(unit, { n }))));
      const reason = h("input", { id: "silence-reason" });
      const error = h("div", { id: "silence-error" });
      const save = h("button", { id: "silence-save", class: "button primary-button" }, t("silence"));
      save.addEventListener("click", () => C.act(error, async () => {
        const until = (Date.now() + Number(duration.value) * 3600 * 1000) * 1000;
        await api("POST", "/v1/kpi-alerts/rules/" + rule.id + "/silence", { until, reason: reason.value });
        editor.replaceChildren();
        reload();
      }));
      editor.replaceChildren(h("div", { class: "form-card", id: "silence-form" },
        h("h3", {}, t("silence") + ":" + rule.name), error,
        field(t("silenceFor"), duration),
        field(t("silenceReason"), reason),
        h("div", { class: "form-actions" }, save,
          h("button", { class: "button", onclick: () => editor.replaceChildren() }, t("cancel")))));
      message.replaceChildren();
    }

    return C.frame("alerts", [t("home"), t("alerts")], body);
  }

  C.page("alerts", view);
})();
