// The Lending page (信贷): the application funnel, decision times, approval by product and
// grade, the portfolio by grade and delinquency bucket, and the manual review queue with approve /
// decline. Reads /v1/lending/...
"use strict";

(function () {
  const C = window.Cockpit;
  const { h, api, t } = C;

  C.strings({
    "zh-CN": {
      lendingTitle: "信贷",
      funnel: "申请漏斗(近30天)",
      f_applied: "申请",
      f_approved: "批准",
      f_offered: "发出要约",
      f_accepted: "接受",
      f_disbursed: "放款",
      f_in_review: "审核中",
      f_declined: "拒绝",
      decisionTimes: "自动决策耗时分布",
      below: "< {n} ms",
      slower: "≥ {n} ms",
      decisions: "笔数",
      approvalRates: "分产品、分等级批准率",
      product: "产品",
      grade: "等级",
      applied: "申请",
      approved: "批准",
      rate: "批准率",
      portfolio: "贷款组合(按等级与逾期档)",
      loans: "笔数",
      principal: "未偿本金",
      bucket_current: "正常",
      bucket_m1: "M1",
      bucket_m2: "M2",
      bucket_m3_plus: "M3+",
      reviewQueue: "人工审核队列",
      application: "申请",
      applicant: "申请人",
      waiting: "进入队列",
      reviewNote: "审核意见(必填)",
      approve: "批准",
      decline: "拒绝",
      declineReason: "拒绝原因",
      approvedOk: "申请 {id} 已批准",
      declinedOk: "申请 {id} 已拒绝",
      noteRequired: "请填写审核意见",
      dr_insufficient_income: "收入不足",
      dr_high_indebtedness: "负债过高",
      dr_adverse_credit_history: "不良信用记录",
      dr_unverifiable_information: "信息无法核实",
      dr_suspected_fraud: "疑似欺诈",
      dr_policy_exception_refused: "不予政策例外",
      dr_other: "其他",
    },
    en: {
      lendingTitle: "Lending",
      funnel: "Application funnel (30 days)",
      f_applied: "Applied",
      f_approved: "Approved",
      f_offered: "Offered",
      f_accepted: "Accepted",
      f_disbursed: "Disbursed",
      f_in_review: "In review",
      f_declined: "Declined",
      decisionTimes: "Automated decision time",
      below: "< {n} ms",
      slower: "≥ {n} ms",
      decisions: "Decisions",
      approvalRates: "Approval by product and grade",
      product: "Product",
      grade: "Grade",
      applied: "Applied",
      approved: "Approved",
      rate: "Approval rate",
      portfolio: "Portfolio by grade and DPD bucket",
      loans: "Loans",
      principal: "Outstanding principal",
      bucket_current: "Current",
      bucket_m1: "M1",
      bucket_m2: "M2",
      bucket_m3_plus: "M3+",
      reviewQueue: "Manual review queue",
      application: "Application",
      applicant: "Applicant",
      waiting: "Queued",
      reviewNote: "Review note (required)",
      approve: "Approve",
      decline: "Decline",
      declineReason: "Decline reason",
      approvedOk: "Application {id} approved",
      declinedOk: "Application {id} declined",
      noteRequired: "Enter a review note",
      dr_insufficient_income: "Insufficient income",
      dr_high_indebtedness: "High indebtedness",
      dr_adverse_credit_history: "Adverse credit history",
      dr_unverifiable_information: "Unverifiable information",
      dr_suspected_fraud: "Suspected fraud",
      dr_policy_exception_refused: "Policy exception refused",
      dr_other: "Other",
    },
  });

  C.errors({
    "zh-CN": {
      review_already_decided: "该申请已被他人处理",
      not_in_review: "该申请不在审核中",
      review_item_not_found: "审核项不存在",
      invalid_review: "审核意见须为 1–2000 字",
      limit_above_grid: "额度超过该等级上限",
    },
    en: {
      review_already_decided: "Someone already decided this application",
      not_in_review: "The application is not in review",
      review_item_not_found: "No such review item",
      invalid_review: "The review note must be 1–2000 characters",
      limit_above_grid: "The limit is above the grade's maximum",
    },
  });

  const BUCKETS = ["current", "m1", "m2", "m3_plus"];
  const DECLINE_REASONS = ["insufficient_income", "high_indebtedness", "adverse_credit_history", "unverifiable_information",
    "suspected_fraud", "policy_exception_refused", "other"];

  function percent(n, d) {
    return d ? (n * 100 / d).toFixed(1) + "%" : "—";
  }

  function view() {
    const body = h("div", { id: "lending" });
    const message = h("div", { id: "lending-message" });
    const reload = C.load(body, async () => {
      const [funnel, portfolio, queue] = await Promise.all([
        api("GET", "/v1/lending/funnel?days=30"),
        api("GET", "/v1/lending/portfolio"),
        api("GET", "/v1/lending/review-queue"),
      ]);
      draw(funnel.body, portfolio.body.cells, queue.body.items);
    }, 30000);

    function draw(f, cells, items) {
      const funnelChart = h("div", { class: "chart", id: "funnel-chart" });
      const timeChart = h("div", { class: "chart", id: "decision-time-chart" });
      const portfolioChart = h("div", { class: "chart", id: "portfolio-chart" });
      const stages = ["applied", "approved", "offered", "accepted", "disbursed"];
      const rates = C.table("approval-rates", [
        [t("product"), (r) => r.product_code],
        [t("grade"), (r) => r.grade || "—"],
        [t("applied"), (r) => String(r.applied)],
        [t("approved"), (r) => String(r.approved)],
        [t("rate"), (r) => percent(r.approved, r.applied)],
      ], f.approval_by_product_grade);
      const grades = [...new Set(cells.map((c) => c.grade))];
      const portfolioTable = C.table("portfolio", [
        [t("grade"), (g) => g || "—"],
        ...BUCKETS.map((b) => [t("bucket_" + b), (g) => {
          const c = cells.find((c) => c.grade === g && c.bucket === b);
          return c ? c.loans + " / " + C.yuan(String(c.principal_minor)) : "—";
        }]),
      ], grades);
      const queue = C.table("review-queue", [
        [t("application"), (i) => i.decision_id.slice(0, 8)],
        [t("applicant"), (i) => i.applicant_id],
        [t("product"), (i) => i.product_code],
        [t("reasons"), (i) => (Array.isArray(i.reasons) ? i.reasons : []).slice(0, 3).map((r) => r.message || r.explanation || r.code).join(";")],
        [t("waiting"), (i) => C.when(i.created_at)],
        [t("actions"), (i) => {
          const note = h("input", { class: "review-note", placeholder: t("reviewNote") });
          const reason = h("select", { class: "decline-reason", title: t("declineReason") },
            DECLINE_REASONS.map((r) => h("option", { value: r }, t("dr_" + r))));
          const decide = (what) => {
            if (!note.value.trim()) {
              message.replaceChildren(h("div", { class: "alert action-error" }, t("noteRequired")));
              note.focus();
              return;
            }
            C.act(message, async () => {
              const body = what === "approve" ? { note: note.value } : { note: note.value, reason_code: reason.value };
              await api("POST", "/v1/lending/review-queue/" + i.decision_id + "/" + what, body);
              message.replaceChildren(h("div", { class: "ok-message", id: "lending-ok" },
                t(what === "approve" ? "approvedOk" : "declinedOk", { id: i.decision_id.slice(0, 8) })));
              reload();
            });
          };
          return h("span", { class: "row-actions" }, note, reason,
            h("button", { class: "button primary-button approve", onclick: () => decide("approve") }, t("approve")),
            h("button", { class: "button danger-button decline", onclick: () => decide("decline") }, t("decline")));
        }],
      ], items);
      for (const [n, i] of items.entries()) if (queue.tBodies[0].rows[n]) queue.tBodies[0].rows[n].setAttribute("data-review", i.decision_id);

      body.replaceChildren(
        message,
        h("div", { class: "grid2" },
          h("section", { class: "panel" }, h("h2", {}, t("funnel")),
            h("div", { class: "stats", id: "funnel-stats" }, [...stages, "in_review", "declined"].map((s) =>
              h("div", { class: "stat", "data-stage": s }, h("div", { class: "label" }, t("f_" + s)), h("div", { class: "number" }, String(f[s]))))),
            funnelChart),
          h("section", { class: "panel" }, h("h2", {}, t("decisionTimes")), timeChart)),
        h("section", { class: "panel" }, h("h2", {}, t("reviewQueue") + " (" + items.length + ")"), queue),
        h("div", { class: "grid2" },
          h("section", { class: "panel" }, h("h2", {}, t("portfolio")), portfolioChart, portfolioTable),
          h("section", { class: "panel" }, h("h2", {}, t("approvalRates")), rates)));

      requestAnimationFrame(() => {
        C.chart(funnelChart, {
          tooltip: { trigger: "item" },
          series: [{ type: "funnel", sort: "none", left: "10%", width: "80%", minSize: "8%", label: { formatter: "{b}: {c}" },
            data: stages.map((s) => ({ name: t("f_" + s), value: f[s] })) }],
        });
        C.chart(timeChart, {
          tooltip: { trigger: "axis" },
          grid: { left: 50, right: 20, top: 20, bottom: 30 },
          xAxis: { type: "category", data: f.decision_times.map((b, i) => b.below_ms !== null ? t("below", { n: b.below_ms })
            : t("slower", { n: f.decision_times[i - 1] ? f.decision_times[i - 1].below_ms : 0 })) },
          yAxis: { type: "value", name: t("decisions") },
          series: [{ type: "bar", data: f.decision_times.map((b) => b.count), itemStyle: { color: "#1677ff" } }],
        });
        C.chart(portfolioChart, {
          tooltip: { trigger: "axis" },
          legend: { data: BUCKETS.map((b) => t("bucket_" + b)) },
          grid: { left: 90, right: 20, top: 30, bottom: 30 },
          xAxis: { type: "category", data: grades.map((g) => g || "—") },
          yAxis: { type: "value", axisLabel: { formatter: (v) => C.format("cny_minor", String(Math.round(v))) } },
          color: ["#52c41a", "#faad14", "#fa8c16", "#cf1322"],
          series: BUCKETS.map((b) => ({
            name: t("bucket_" + b), type: "bar", stack: "p",
            data: grades.map((g) => (cells.find((c) => c.grade === g && c.bucket === b) || { principal_minor: 0 }).principal_minor),
          })),
        });
      });
    }

    return C.frame("lending", [t("home"), t("lendingTitle")], body);
  }

  C.page("lending", view);
})();
