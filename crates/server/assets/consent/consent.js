// The bank's consent screen: the customer proves they hold the phone on their record with a
// one-time code, chooses accounts and authorises or rejects. The session secret returned after
// the code stays in this page (never in the URL), so the partner that started the flow cannot
// decide in the customer's place.
(function () {
  const main = document.getElementById('consent');
  const id = main.dataset.authorization;
  const base = '/open-banking/authorizations/' + encodeURIComponent(id);
  let session = null;
  const $ = (s) => document.getElementById(s);
  const say = (text) => { $('message').textContent = text || ''; };

  async function call(path, body) {
    const response = await fetch(base + path, {
      method: body ? 'POST' : 'GET',
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
    return data;
  }

  // Minor units as a decimal string (no floating point): 1234567 -> "12,345.67".
  const money = (minor, currency) => {
    const digits = String(Math.abs(minor)).padStart(3, '0');
    const whole = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (minor < 0 ? '-' : '') + whole + '.' + digits.slice(-2) + ' ' + currency;
  };
  const item = (zh, en) => {
    const li = document.createElement('li');
    li.textContent = zh;
    const small = document.createElement('small');
    small.textContent = en;
    li.appendChild(small);
    $('permissions').appendChild(li);
  };
  // One account for a payment (paid from) or a loan (paid out to); any number to share.
  let oneAccount = false;

  call('').then((view) => {
    $('partner').textContent = view.partner_name;
    $('expires').textContent = new Date(view.expiration_time).toLocaleString();
    if (view.kind === 'domestic_payment' && view.initiation) {
      const p = view.initiation;
      oneAccount = true;
      $('asks').textContent = '请求从您的账户付款 · asks to make a payment from your account';
      $('choose').textContent = '选择付款账户 · Choose the account to pay from';
      item('金额：' + money(p.instructed_amount_minor, p.currency), 'Amount: ' + money(p.instructed_amount_minor, p.currency));
      item('收款账户：' + p.creditor_account_id, 'To account: ' + p.creditor_account_id);
      if (p.reference) item('附言：' + p.reference, 'Reference: ' + p.reference);
    } else if (view.kind === 'loan_application' && view.loan) {
      const l = view.loan;
      oneAccount = true;
      $('asks').textContent = '请求代您申请一笔贷款 · asks to apply for a loan for you';
      $('choose').textContent = '选择放款账户 · Choose the account the loan is paid out to';
      item('产品：' + l.product_code, 'Product: ' + l.product_code);
      item('最高金额：' + money(l.max_amount_minor, l.currency), 'Up to ' + money(l.max_amount_minor, l.currency));
      item('银行将查询您的征信、社保、公积金与纳税数据以作审批', 'The bank checks your credit, social security, housing fund and tax data to decide');
      item('贷款须经您本人确认方可发放', 'Nothing is lent until you accept the offer yourself');
    }
    for (const p of view.permissions) item(p.zh, p.en);
  }).catch((e) => say(e.message));

  $('send-code').addEventListener('click', async () => {
    say('');
    try {
      const sent = await call('/code', { phone: $('phone').value });
      $('sent-to').textContent = sent.sent_to
        ? '验证码已发送至 · Code sent to ' + sent.sent_to
        : '如该号码已登记，验证码已发送 · If this number is registered, a code was sent';
      $('step-code').hidden = false;
    } catch (e) { say(e.message); }
  });

  $('verify').addEventListener('click', async () => {
    say('');
    try {
      const verified = await call('/verify', { code: $('code').value });
      session = verified.session;
      const list = $('accounts');
      list.textContent = '';
      for (const a of verified.accounts) {
        const row = document.createElement('label');
        row.className = 'account';
        const box = document.createElement('input');
        box.type = oneAccount ? 'radio' : 'checkbox';
        box.name = 'account';
        box.value = a.account_id;
        box.checked = !oneAccount || list.childElementCount === 0;
        row.appendChild(box);
        row.appendChild(document.createTextNode((a.product || '') + ' ' + a.currency + ' …' + a.account_id.slice(-6)));
        list.appendChild(row);
      }
      $('step-phone').hidden = true;
      $('step-code').hidden = true;
      $('step-accounts').hidden = false;
    } catch (e) { say(e.message); }
  });

  async function decide(decision) {
    say('');
    const accounts = [...document.querySelectorAll('#accounts input:checked')].map((b) => b.value);
    try {
      const result = await call('/decision', { session, decision, accounts });
      window.location.assign(result.redirect_to);
    } catch (e) { say(e.message); }
  }
  $('authorise').addEventListener('click', () => decide('authorise'));
  $('reject').addEventListener('click', () => decide('reject'));
})();
