// The Ledger page (账务): account lookup, the statement (entries) and the balance as of a date.
// Reads /v1/accounts/...
"use strict";

(function () {
  const C = window.Cockpit;
  const { h, api, t } = C;

  C.strings({
    "zh-CN": {
      ledgerTitle: "账务",
      accounts: "账户",
      accountId: "账户号",
      lookup: "查询",
      owner: "所有人",
      accountKind: "类型",
      currency: "币种",
      posted: "已入账余额",
      available: "可用余额",
      accountStatus: "状态",
      statement: "对账单(按记账顺序)",
      more: "加载更多",
      seq: "序号",
      side: "方向",
      side_debit: "借",
      side_credit: "贷",
      amount: "金额",
      counterparty: "对方账户",
      reference: "摘要",
      balanceAsOf: "指定时点余额",
      asOf: "截至",
      show: "查看",
      balanceOn: "截至 {d} 的已入账余额:{v}",
      accountIdFormat: "账户号为 UUID,如 0190…",
    },
    en: {
      ledgerTitle: "Ledger",
      accounts: "Accounts",
      accountId: "Account id",
      lookup: "Look up",
      owner: "Owner",
      accountKind: "Kind",
      currency: "Currency",
      posted: "Posted balance",
      available: "Available",
      accountStatus: "Status",
      statement: "Statement (in journal order)",
      more: "More",
      seq: "Seq",
      side: "Side",
      side_debit: "Debit",
      side_credit: "Credit",
      amount: "Amount",
      counterparty: "Counterparty",
      reference: "Reference",
      balanceAsOf: "Balance as of a date",
      asOf: "As of",
      show: "Show",
      balanceOn: "Posted balance as of {d}: {v}",
      accountIdFormat: "An account id is a UUID, e.g. 0190…",
    },
  });

  C.errors({
    "zh-CN": { account_not_found: "账户不存在", invalid_query: "查询条件有误", invalid_path: "账户号格式不正确" },
    en: { account_not_found: "No such account", invalid_query: "The query is not valid", invalid_path: "The account id is not valid" },
  });

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function money(minor, currency) {
    return currency === "CNY" ? C.yuan(String(minor)) : (minor / 100).toFixed(2) + " " + currency;
  }

  function view(params) {
    const body = h("div", { id: "ledger" });
    const detail = h("div", { id: "account-detail" });
    C.load(body, async () => {
      const list = await api("GET", "/v1/accounts?limit=20");
      draw(list.body.accounts);
      if (params.get("id")) open(params.get("id"));
    });

    function draw(accounts) {
      const input = h("input", { id: "account-id", placeholder: t("accountId") });
      const hint = h("div", { class: "hint", id: "account-id-hint" });
      const go = h("button", { id: "account-lookup", class: "button primary-button" }, t("lookup"));
      go.addEventListener("click", () => {
        hint.textContent = "";
        if (!UUID.test(input.value.trim())) { hint.textContent = t("accountIdFormat"); return; }
        open(input.value.trim());
      });
      body.replaceChildren(
        h("section", { class: "panel" }, h("h2", {}, t("accounts")),
          h("div", { class: "toolbar" }, input, go), hint,
          C.table("account-list", [
            [t("accountId"), (a) => h("button", { class: "link open-account", onclick: () => open(a.id) }, a.id)],
            [t("name"), (a) => a.name || a.code || ""],
            [t("owner"), (a) => a.owner_id || a.owner_type],
            [t("accountKind"), (a) => a.kind],
            [t("posted"), (a) => money(a.kind === "asset" || a.kind === "expense"
              ? a.balances.debits_posted - a.balances.credits_posted
              : a.balances.credits_posted - a.balances.debits_posted, a.currency)],
            [t("accountStatus"), (a) => a.status],
          ], accounts)),
        detail);
    }

    async function open(id) {
      await C.act(detail, async () => {
        const [a, bal, entries] = await Promise.all([
          api("GET", "/v1/accounts/" + id),
          api("GET", "/v1/accounts/" + id + "/balance"),
          api("GET", "/v1/accounts/" + id + "/entries?limit=100"),
        ]);
        const acct = a.body;
        const date = h("input", { id: "as-of", type: "date", value: new Date().toISOString().slice(0, 10) });
        const asOfResult = h("div", { id: "as-of-result" });
        const show = h("button", { id: "as-of-show", class: "button" }, t("show"));
        show.addEventListener("click", () => C.act(asOfResult, async () => {
          // The end of the chosen day (UTC), or now for today.
          const end = Date.parse(date.value + "T23:59:59.999Z");
          if (Number.isNaN(end)) return;
          const at = Math.min(end, Date.now()) * 1000;
          const r = await api("GET", "/v1/accounts/" + id + "/balance?as_of=" + at);
          asOfResult.replaceChildren(h("div", { class: "ok-message", id: "as-of-value", "data-posted": String(r.body.posted) },
            t("balanceOn", { d: date.value, v: money(r.body.posted, acct.currency) })));
        }));
        const columns = [
          [t("seq"), (e) => String(e.seq)],
          [t("time"), (e) => C.when(e.created_at)],
          [t("side"), (e) => C.tag(t("side_" + e.side), e.side === "credit" ? "green" : "orange")],
          [t("amount"), (e) => money(e.amount, e.currency)],
          [t("counterparty"), (e) => h("button", { class: "link", onclick: () => open(e.counterparty_account_id) }, e.counterparty_account_id.slice(0, 8) + "…")],
          [t("reference"), (e) => e.reference || e.kind],
        ];
        let shown = entries.body.entries;
        let next = entries.body.next_after;
        const statement = h("div", { id: "statement-box" });
        const drawStatement = () => statement.replaceChildren(C.table("statement", columns, shown),
          next ? h("button", { class: "button", id: "statement-more", onclick: () => C.act(statement, async () => {
            const r = await api("GET", "/v1/accounts/" + id + "/entries?limit=100&after=" + next);
            shown = shown.concat(r.body.entries);
            next = r.body.next_after;
            drawStatement();
          }) }, t("more")) : null);
        drawStatement();
        const pair = (k, v) => [h("div", { class: "k" }, k), h("div", {}, v)];
        detail.replaceChildren(h("section", { class: "panel", id: "account-panel" },
          h("h2", {}, (acct.name || acct.code || t("accountId")) + " · " + acct.id),
          h("div", { class: "descriptions" },
            pair(t("owner"), acct.owner_id || acct.owner_type), pair(t("accountKind"), acct.kind),
            pair(t("currency"), acct.currency), pair(t("accountStatus"), acct.status),
            pair(t("posted"), h("span", { id: "posted-balance", "data-posted": String(bal.body.posted) }, money(bal.body.posted, acct.currency))),
            pair(t("available"), money(bal.body.available, acct.currency))),
          h("h3", {}, t("balanceAsOf")),
          h("div", { class: "toolbar" }, h("label", {}, t("asOf")), date, show), asOfResult,
          h("h3", {}, t("statement")),
          statement));
      });
    }

    return C.frame("ledger", [t("home"), t("ledgerTitle")], body);
  }

  C.page("ledger", view);
})();
