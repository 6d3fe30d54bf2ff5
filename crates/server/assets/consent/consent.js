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

  call('').then((view) => {
    $('partner').textContent = view.partner_name;
    $('expires').textContent = new Date(view.expiration_time).toLocaleString();
    for (const p of view.permissions) {
      const li = document.createElement('li');
      li.textContent = p.zh;
      const en = document.createElement('small');
      en.textContent = p.en;
      li.appendChild(en);
      $('permissions').appendChild(li);
    }
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
        box.type = 'checkbox';
        box.value = a.account_id;
        box.checked = true;
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
