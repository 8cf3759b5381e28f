// Phone-first journeys in a real browser at a phone's width (issue 30):
// 1. a phone-only seller forgot her password: "Quên mật khẩu?" → her number → the code that
//    reached her phone → a new password typed twice → she logs in with it;
// 2. the village head gives another seller a code in person ("Cấp lại mật khẩu"), read off
//    the screen, and that seller sets a new password with it;
// 3. a helper of the digital team brings a household online (the household's code typed in),
//    then edits the stock of a household it already helps; that household's owner sees it.
// The codes sent to phones are read where the demo writes them (MAIL_DIR, `.eml` files to
// `<phone>@phone.invalid`). Every page visited gets checks.mjs and a screenshot in SHOTS_DIR.
// Usage: node team.mjs BASE_URL SHOTS_DIR SETUP_JSON
// SETUP_JSON: {"width", "height", "mail_dir", "password", "seller", "seller2", "moderator",
//   "helper", "household": {"name", "phone", "shop"}, "helped_owner", "helped_product"}
import fs from 'node:fs';
import path from 'node:path';
import { launch, screenshot, watchCsp, checkPage } from './checks.mjs';

const [base, shots, setupJson] = process.argv.slice(2);
const setup = JSON.parse(setupJson);
fs.mkdirSync(shots, { recursive: true });
const failures = [];
setTimeout(() => {
  console.error(`team.mjs: still running after 4 minutes\n${failures.join('\n')}`);
  process.exit(1);
}, 240000).unref();

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/** The body text of a message file, whatever its transfer encoding. */
function textOf(raw) {
  const part = raw.split(/\r?\n--/).find((p) => /content-type:\s*text\/plain/i.test(p)) ?? raw;
  const [head, ...rest] = part.split(/\r?\n\r?\n/);
  const body = rest.join('\n\n');
  if (/content-transfer-encoding:\s*base64/i.test(head)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

/** The newest code written for a phone after `since` (ms), waiting for it to arrive. */
async function codeFor(phone, since) {
  for (let tries = 0; tries < 100; tries += 1) {
    const found = fs.existsSync(setup.mail_dir)
      ? fs.readdirSync(setup.mail_dir)
        .map((f) => path.join(setup.mail_dir, f))
        .filter((f) => fs.statSync(f).mtimeMs >= since)
        .map((f) => ({ at: fs.statSync(f).mtimeMs, raw: fs.readFileSync(f, 'utf8') }))
        .filter((m) => m.raw.includes(`${phone}@phone.invalid`))
        .sort((a, b) => a.at - b.at)
      : [];
    const last = found.pop();
    const m = last && textOf(last.raw).match(/là (\d{3} \d{3})/);
    if (m) return m[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code reached ${phone}`);
}

const browser = await launch();
let n = 0;

async function visitor() {
  const context = await browser.newContext({ viewport: { width: setup.width, height: setup.height } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const csp = watchCsp(page);
  return {
    page,
    context,
    async step(name, resp) {
      n += 1;
      await screenshot(page, `${shots}/team-${String(n).padStart(2, '0')}-${name}.png`);
      const checked = await checkPage(page, `${name} (${new URL(page.url()).pathname})`, await resp.body(), csp);
      failures.push(...checked.failures);
    },
    async go(p) {
      const resp = await page.goto(`${base}${p}`);
      expect(resp.status() === 200, `${p} answered ${resp.status()}`);
      return resp;
    },
    async click(target, status = 200) {
      const loc = typeof target === 'string' ? page.locator(target).first() : target.first();
      const [resp] = await Promise.all([page.waitForNavigation(), loc.click()]);
      expect(resp.status() === status, `${resp.url()} answered ${resp.status()}, not ${status}`);
      return resp;
    },
    async login(who, password) {
      await this.go('/dang-nhap');
      await page.fill('input[name=login]', who);
      await page.fill('input[name=password]', password);
      const resp = await this.click('form[action="/dang-nhap"] button[type=submit]');
      expect(new URL(page.url()).pathname === '/quan-ly', `${who} lands on ${page.url()}`);
      return resp;
    },
  };
}

/** Sets a new password on the reset page with a code, then logs in with it. */
async function resetWith(v, login, code, password) {
  const { page } = v;
  await page.fill('input[name=login]', login);
  await page.fill('input[name=code]', code);
  await page.fill('input[name=password]', password);
  await page.fill('input[name=password_again]', password);
  const resp = await v.click('form[action="/dat-lai-mat-khau"] button[type=submit]');
  expect(page.url().includes('ok=password-reset'), `after the reset: ${page.url()}`);
  await v.step('reset-done', resp);
  return v.login(login, password);
}

try {
  // 1. A phone-only seller resets her password with the code her phone received.
  const s = await visitor();
  let resp = await s.go('/dang-nhap');
  resp = await s.click('a[href="/quen-mat-khau"]');
  await s.step('forgot', resp);
  const since = Date.now() - 1000;
  await s.page.fill('input[name=login]', setup.seller.replace(/^0(\d{3})(\d{3})(\d{3})$/, '0$1 $2 $3'));
  resp = await s.click('form[action="/quen-mat-khau"] button[type=submit]');
  await s.step('code-sent', resp);
  expect((await s.page.textContent('h1')).includes('Đặt lại mật khẩu'), 'the code form follows');
  const code = await codeFor(setup.seller, since);
  resp = await resetWith(s, setup.seller, code, 'mat-khau-moi-cua-hanh');
  await s.step('seller-back-in', resp);
  await s.context.close();

  // 2. The village head gives a code in person; the seller uses it.
  const m = await visitor();
  resp = await m.login(setup.moderator, setup.password);
  resp = await m.click('main a[href$="/to-cong-nghe"]');
  await m.step('team-page', resp);
  await m.page.fill('#reset_login', setup.seller2);
  resp = await m.click('form[action="/quan-ly/cap-lai-mat-khau"] button[type=submit]');
  await m.step('code-issued', resp);
  const shown = (await m.page.textContent('.big-code')).trim();
  expect(/^\d{4} \d{4}$/.test(shown), `code on the screen: ${shown}`);
  await m.context.close();
  const s2 = await visitor();
  resp = await s2.go('/dat-lai-mat-khau');
  await s2.step('reset-form', resp);
  resp = await resetWith(s2, setup.seller2, shown, 'mat-khau-tai-cho-1');
  await s2.context.close();

  // 3. The helper brings a household online, then works for a household already helped.
  const h = await visitor();
  resp = await h.login(setup.helper, setup.password);
  await h.step('helper-dashboard', resp);
  resp = await h.click('main a.button[href="/quan-ly/giup-ho"]');
  await h.step('helper-page', resp);
  const hsince = Date.now() - 1000;
  await h.page.fill('#name', setup.household.name);
  await h.page.fill('#phone', setup.household.phone);
  await h.page.fill('#shop_name', setup.household.shop);
  resp = await h.click('form[action="/quan-ly/giup-ho"] button[type=submit]');
  await h.step('household-code-asked', resp);
  const hcode = await codeFor(setup.household.phone, hsince);
  await h.page.fill('#code', hcode);
  resp = await h.click('#nhap-ma form button[type=submit]');
  await h.step('household-online', resp);
  expect(h.page.url().includes('ok=household'), `after the code: ${h.page.url()}`);
  expect((await h.page.textContent('main')).includes('đã mở cửa hàng'), 'the household is not listed as online');
  resp = await h.click(`main a[href="/quan-ly/san-pham/${setup.helped_product}"]`);
  await h.step('helped-product', resp);
  await h.page.fill('input[name=stock]', '77');
  resp = await h.click('main form.form button[type=submit]');
  await h.step('helped-stock-saved', resp);
  expect(h.page.url().includes('ok=product-saved'), `after saving: ${h.page.url()}`);
  await h.context.close();

  const o = await visitor();
  resp = await o.login(setup.helped_owner, setup.password);
  await o.step('owner-sees-helper', resp);
  expect((await o.page.textContent('main')).includes('giúp bạn: sửa sản phẩm'), 'the owner does not see what the helper did');
  await o.context.close();
} catch (e) {
  failures.push(e.message);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`ok: phone reset, in-person code and helper journeys at ${setup.width} px`);
