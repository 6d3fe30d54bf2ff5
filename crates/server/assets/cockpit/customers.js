// The Customers page (客户): segment sizes, search by tag / segment / tier / RFM / lifecycle, the
// 360° profile with its tags and why, the churn-risk list. Reads /v1/segments, /v1/customers...
"use strict";

(function () {
  const C = window.Cockpit;
  const { h, api, t } = C;

  C.strings({
    "zh-CN": {
      customersTitle: "客户",
      segmentSizes: "客群规模",
      tiers: "客户层级",
      rfm: "RFM 分群",
      lifecycle: "生命周期",
      search: "客户查询",
      searchBy: "按",
      by_tag: "标签",
      by_segment: "客群",
      by_tier: "层级",
      by_rfm: "RFM 分群",
      by_lifecycle: "生命周期",
      find: "查询",
      name: "姓名",
      kyc: "KYC",
      created: "建档时间",
      status: "状态",
      open360: "360° 视图",
      profile360: "客户 360° 视图",
      tags: "标签",
      why: "依据",
      aum: "资产(AUM)",
      churn: "流失概率",
      identities: "渠道身份",
      churnRisk: "流失风险客户",
      factors: "主要因素",
      found: "共 {n} 位",
    },
    en: {
      customersTitle: "Customers",
      segmentSizes: "Segment sizes",
      tiers: "Tiers",
      rfm: "RFM segments",
      lifecycle: "Lifecycle",
      search: "Find customers",
      searchBy: "By",
      by_tag: "Tag",
      by_segment: "Segment",
      by_tier: "Tier",
      by_rfm: "RFM segment",
      by_lifecycle: "Lifecycle",
      find: "Search",
      name: "Name",
      kyc: "KYC",
      created: "Created",
      status: "Status",
      open360: "360° view",
      profile360: "Customer 360° view",
      tags: "Tags",
      why: "Why",
      aum: "AUM",
      churn: "Churn probability",
      identities: "Channel identities",
      churnRisk: "Churn-risk customers",
      factors: "Main factors",
      found: "{n} found",
    },
  });

  C.errors({
    "zh-CN": { customer_not_found: "客户不存在", invalid_query: "查询条件有误" },
    en: { customer_not_found: "No such customer", invalid_query: "The search is not valid" },
  });

  // A value read by a condition: {"number": "34"} → 34.
  function shown(v) {
    if (v && typeof v === "object") {
      const inner = Object.values(v)[0];
      return typeof inner === "string" ? inner : JSON.stringify(inner);
    }
    return String(v);
  }

  // A tag's explanation in words: the conditions that held, with the values read.
  function explain(e) {
    if (!e) return "";
    const leaves = [];
    const walk = (x) => {
      if (x.children && x.children.length) x.children.filter((c) => c.result !== false).forEach(walk);
      else leaves.push(x.condition + (x.inputs && x.inputs.length ? " (" + x.inputs.map((i) => i.field + " = " + shown(i.value)).join(", ") + ")" : ""));
    };
    walk(e);
    return leaves.join(";");
  }

  function view(params) {
    const body = h("div", { id: "customers" });
    const results = h("div", { id: "customer-results" });
    const profile = h("div", { id: "customer-profile" });
    let segments = null;
    C.load(body, async () => {
      const [s, churn] = await Promise.all([api("GET", "/v1/segments"), api("GET", "/v1/customers/churn-risk?limit=20")]);
      segments = s.body;
      draw(churn.body);
      if (params.get("id")) openProfile(params.get("id"));
    });

    function options(kind) {
      if (!segments) return [];
      if (kind === "segment") return segments.segments.map((s) => [s.id, s.name + " (" + s.count + ")"]);
      const map = { tag: segments.tags, tier: segments.tiers, rfm: segments.rfm, lifecycle: segments.lifecycle }[kind] || {};
      return Object.entries(map).map(([k, n]) => [k, k + " (" + n + ")"]);
    }

    function draw(churn) {
      const kind = h("select", { id: "search-kind" }, ["tag", "segment", "tier", "rfm", "lifecycle"].map((k) => h("option", { value: k }, t("by_" + k))));
      const value = h("select", { id: "search-value" });
      const fill = () => value.replaceChildren(...options(kind.value).map(([v, label]) => h("option", { value: v }, label)));
      kind.addEventListener("change", fill);
      fill();
      const find = h("button", { id: "search-button", class: "button primary-button" }, t("find"));
      find.addEventListener("click", () => search(kind.value, value.value));
      const chartTiers = h("div", { class: "chart", id: "segment-chart" });
      const churnTable = C.table("churn-risk", [
        [t("customerId"), (r) => h("a", { href: "#/customers?id=" + encodeURIComponent(r.customer_id) }, r.customer_id)],
        [t("churn"), (r) => r.churn ? (r.churn.probability * 100).toFixed(1) + "%" : "—"],
        [t("tiers"), (r) => r.tier],
        [t("lifecycle"), (r) => r.lifecycle],
        [t("aum"), (r) => C.yuan(String(r.aum_minor))],
        [t("factors"), (r) => r.reasons.slice(0, 3).join(";")],
      ], churn);
      body.replaceChildren(
        h("div", { class: "grid2" },
          h("section", { class: "panel" }, h("h2", {}, t("segmentSizes")), chartTiers),
          h("section", { class: "panel" }, h("h2", {}, t("search")),
            h("div", { class: "toolbar" }, h("label", {}, t("searchBy")), kind, value, find), results)),
        profile,
        h("section", { class: "panel" }, h("h2", {}, t("churnRisk")), churnTable));
      requestAnimationFrame(() => {
        const groups = [["tiers", segments.tiers], ["rfm", segments.rfm], ["lifecycle", segments.lifecycle]];
        const labels = groups.flatMap(([g, m]) => Object.keys(m).map((k) => t(g) + ":" + k));
        C.chart(chartTiers, {
          tooltip: { trigger: "axis" },
          grid: { left: 150, right: 20, top: 10, bottom: 20 },
          xAxis: { type: "value" },
          yAxis: { type: "category", data: labels, inverse: true },
          series: [{ type: "bar", data: groups.flatMap(([, m]) => Object.values(m)), itemStyle: { color: "#1677ff" } }],
        });
      });
    }

    async function search(kind, value) {
      await C.act(results, async () => {
        const r = await api("GET", "/v1/customers?limit=20&" + kind + "=" + encodeURIComponent(value));
        const list = r.body.customers;
        results.replaceChildren(h("div", { class: "muted", id: "search-count" }, t("found", { n: list.length + (r.body.next_after ? "+" : "") })),
          C.table("customer-list", [
            [t("customerId"), (c) => c.id],
            [t("name"), (c) => c.name],
            [t("kyc"), (c) => c.kyc_status],
            [t("created"), (c) => C.when(c.created_at)],
            [t("actions"), (c) => h("button", { class: "link open-profile", onclick: () => openProfile(c.id) }, t("open360"))],
          ], list));
      });
    }

    async function openProfile(id) {
      await C.act(profile, async () => {
        const [c, p, tags] = await Promise.all([
          api("GET", "/v1/customers/" + encodeURIComponent(id)),
          api("GET", "/v1/customers/" + encodeURIComponent(id) + "/profile").catch(() => null),
          api("GET", "/v1/customers/" + encodeURIComponent(id) + "/tags").catch(() => null),
        ]);
        const computed = p && p.body.computed;
        const pair = (k, v) => [h("div", { class: "k" }, k), h("div", {}, v)];
        profile.replaceChildren(h("section", { class: "panel", id: "profile-360" },
          h("h2", {}, t("profile360") + " · " + c.body.id),
          h("div", { class: "descriptions" },
            pair(t("name"), c.body.name), pair(t("kyc"), c.body.kyc_status),
            pair(t("status"), c.body.status), pair(t("created"), C.when(c.body.created_at)),
            pair(t("tiers"), computed ? computed.tier : "—"), pair(t("lifecycle"), computed ? computed.lifecycle : "—"),
            pair(t("rfm"), computed ? computed.rfm_segment + " " + computed.rfm.join("/") : "—"),
            pair(t("aum"), computed ? C.yuan(String(computed.aum_minor)) : "—"),
            pair(t("churn"), computed && computed.churn ? (computed.churn.probability * 100).toFixed(1) + "%" : "—"),
            pair(t("identities"), p ? p.body.identities.map((i) => i.channel).join(", ") || "—" : "—")),
          h("h3", {}, t("tags")),
          C.table("profile-tags", [
            [t("tags"), (tg) => C.tag(tg.tag_id, "blue")],
            [t("why"), (tg) => explain(tg.explanation)],
          ], tags ? tags.body.tags : [])));
      });
    }

    return C.frame("customers", [t("home"), t("customersTitle")], body);
  }

  C.page("customers", view);
})();
