// The buyer's journey in a real browser, as a buyer on a phone does it:
// home → search typed without diacritics → filter by village and price → product pages →
// products from two shops in the cart → change a quantity, remove a line → checkout with a
// bad phone (inline error), fixed → payment page → signed bank webhook → paid → order tracking
// with the phone number.
// Run once per mode: "phone" (390 × 844), "desktop" (1280 × 800), "nojs" (phone, JavaScript
// disabled) and "keyboard" (phone, every click and field reached with Tab alone, focus visible
// at every stop). Every page visited gets checks.mjs (phone pages at 390 and 360 px) and a
// screenshot in SHOTS_DIR.
// Prints one JSON line per mode: {"mode", "payment", "phone", "orders"}.
// Usage: node buyer.mjs BASE_URL SHOTS_DIR BANK_SECRET [MODES, comma separated]
import crypto from 'node:crypto';
import fs from 'node:fs';
import { launch, screenshot, watchCsp, checkPage, bankTransfer } from './checks.mjs';

const [base, shots, secret, modesArg] = process.argv.slice(2);
const modes = (modesArg || 'phone,desktop,nojs,keyboard').split(',');
fs.mkdirSync(shots, { recursive: true });
const failures = [];
// A journey that hangs fails the test instead of holding it.
setTimeout(() => {
  console.error(`buyer.mjs: still running after 5 minutes\n${failures.join('\n')}`);
  process.exit(1);
}, 300000).unref();

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/** Clicks and typing, by pointer or by keyboard alone. */
class Driver {
  constructor(page, keyboard, mode) {
    this.page = page;
    this.keyboard = keyboard;
    this.mode = mode;
    this.unfocused = new Set();
  }

  loc(target) {
    return typeof target === 'string' ? this.page.locator(target).first() : target.first();
  }

  /** Tab until `target` has focus; every stop on the way must show where focus is. */
  async tabTo(target) {
    const handle = await this.loc(target).elementHandle();
    for (let i = 0; i < 400; i += 1) {
      await this.page.keyboard.press('Tab');
      const at = await this.page.evaluate((t) => {
        const a = document.activeElement;
        if (!a || a === document.body) return { done: false };
        const cs = getComputedStyle(a);
        const visible = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none';
        const name = `${a.tagName.toLowerCase()} “${(a.getAttribute('aria-label') || a.textContent || a.name || '').trim().slice(0, 30)}”`;
        return { done: a === t, visible, name };
      }, handle);
      if (at.name && !at.visible) this.unfocused.add(at.name);
      if (at.done) return;
    }
    throw new Error(`${this.mode}: cannot reach ${target} with Tab`);
  }

  async click(target) {
    if (!this.keyboard) return this.loc(target).click();
    await this.tabTo(target);
    const tag = await this.loc(target).evaluate((e) => e.tagName);
    // A button or a link takes Enter; a summary toggles with Enter too.
    await this.page.keyboard.press(tag === 'INPUT' ? 'Space' : 'Enter');
  }

  async fill(target, text) {
    if (!this.keyboard) return this.loc(target).fill(text);
    await this.tabTo(target);
    await this.page.keyboard.press('Control+A');
    await this.page.keyboard.press('Backspace');
    await this.page.keyboard.type(text);
  }

  /** Picks `value` in a select: by pointer, or by arrow keys from the keyboard. */
  async choose(target, value) {
    if (!this.keyboard) return this.loc(target).selectOption(value);
    await this.tabTo(target);
    for (let i = 0; i < 60; i += 1) {
      if ((await this.loc(target).inputValue()) === value) return;
      await this.page.keyboard.press('ArrowDown');
    }
    throw new Error(`${this.mode}: cannot choose ${value} in ${target} with the keyboard`);
  }

  /** Runs `act`, which must lead to a new page; returns that page's response. */
  async navigate(act, status = 200) {
    const [resp] = await Promise.all([this.page.waitForNavigation(), act()]);
    expect(resp, `${this.mode}: no response`);
    expect(resp.status() === status, `${this.mode}: ${resp.url()} answered ${resp.status()}, not ${status}`);
    return resp;
  }
}

const vnd = (text) => Number((text.match(/[\d.]+/) || ['0'])[0].replace(/\./g, ''));

async function journey(browser, mode) {
  const viewport = mode === 'desktop' ? { width: 1280, height: 800 } : { width: 390, height: 844 };
  const context = await browser.newContext({ viewport, javaScriptEnabled: mode !== 'nojs' });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const csp = watchCsp(page);
  const d = new Driver(page, mode === 'keyboard', mode);
  let n = 0;
  const step = async (name, resp) => {
    n += 1;
    await screenshot(page, `${shots}/${mode}-${String(n).padStart(2, '0')}-${name}.png`);
    const checked = await checkPage(page, `${mode} ${name} (${new URL(page.url()).pathname})`, await resp.body(), csp, mode === 'nojs');
    failures.push(...checked.failures);
  };
  const cards = () => page.$$eval('ul.cards li.card', (els) => els.map((el) => ({
    href: el.querySelector('a').getAttribute('href'),
    name: el.querySelector('h3').textContent.trim(),
    shop: el.querySelector('.meta a').textContent.trim(),
    meta: el.querySelector('.meta').textContent,
    price: el.querySelector('.price').textContent,
  })));
  const openFilters = async () => {
    if (!(await page.$('details.filters[open]'))) await d.click('details.filters > summary');
    expect(await page.$('details.filters[open]'), `${mode}: the filters do not open`);
  };

  let resp = await page.goto(`${base}/`);
  await step('home', resp);

  // Search typed without diacritics in the home page's search box (the one on the page:
  // the header's is left out where a page has its own).
  expect((await page.locator('input[type=search]').count()) === 1, `${mode}: one search box on the home page`);
  await d.fill('main form.big-search input[name=q]', 'man tuyn');
  resp = await d.navigate(() => (d.keyboard ? page.keyboard.press('Enter') : d.click('main form.big-search button')));
  await step('search', resp);
  let found = await cards();
  expect(found.some((c) => c.name.includes('Màn tuyn')), `${mode}: "man tuyn" found no "Màn tuyn": ${found.map((c) => c.name)}`);

  // Filter by village, then by price.
  await openFilters();
  const village = page.locator('details.filters section.facet', { hasText: 'Làng nghề' }).locator('a', { hasText: 'Phú Đôi' });
  resp = await d.navigate(() => d.click(village));
  await step('search-village', resp);
  found = await cards();
  expect(found.length >= 3 && found.every((c) => c.meta.includes('Phú Đôi')), `${mode}: village filter: ${found.map((c) => c.meta)}`);
  await openFilters();
  await d.fill('form.price-filter input[name=price_max]', '200000');
  resp = await d.navigate(() => d.click('form.price-filter button[type=submit]'));
  await step('search-price', resp);
  const searchUrl = page.url();
  expect(/village=/.test(searchUrl) && /price_max=200000/.test(searchUrl), `${mode}: filters not in ${searchUrl}`);
  found = await cards();
  expect(found.every((c) => c.meta.includes('Phú Đôi') && vnd(c.price) <= 200000), `${mode}: price filter: ${found.map((c) => c.price)}`);

  // Three products from two shops: a, b from one shop… or c from anywhere else.
  const a = found[0];
  const b = found.find((c) => c.shop !== a.shop);
  expect(b, `${mode}: only one shop in ${found.map((c) => c.shop)}`);
  const c = found.find((x) => x !== a && x !== b);
  expect(c, `${mode}: fewer than three products`);
  for (const [i, card] of [a, b, c].entries()) {
    if (i > 0) await page.goto(searchUrl);
    resp = await d.navigate(() => d.click(`ul.cards a[href="${card.href}"]`));
    if (i === 0) await step('product', resp);
    expect((await page.textContent('h1')).trim() === card.name, `${mode}: product page of ${card.name}`);
    await d.fill('form.add-to-cart input[name=quantity]', '1');
    resp = await d.navigate(() => d.click('form.add-to-cart button[type=submit]'));
    if (i === 0) await step('added', resp);
  }

  // The cart: change a quantity, remove a line.
  resp = await d.navigate(() => d.click('header a[href="/gio-hang"]'));
  await step('cart', resp);
  const row = (card) => page.locator('ul.cart-lines > li', { has: page.locator(`a[href="${card.href}"]`) });
  expect((await page.locator('ul.cart-lines > li').count()) === 3, `${mode}: three lines in the cart`);
  expect((await page.textContent('main')).includes('3 sản phẩm'), `${mode}: the cart does not count its lines`);
  expect((await page.locator('main a[href="/"]', { hasText: 'Mua tiếp' }).count()) >= 1, `${mode}: no "Mua tiếp"`);
  if (mode === 'phone') {
    // The stepper stays on one line at 390 px.
    const tops = await row(a).locator('.stepper button').evaluateAll((bs) => bs.map((b) => Math.round(b.getBoundingClientRect().top)));
    expect(new Set(tops).size === 1, `${mode}: the stepper wraps: ${tops}`);
  }
  await d.fill(row(a).locator('input[name=quantity]:not([type=hidden])'), '2');
  resp = await d.navigate(() => d.click(row(a).locator('button', { hasText: 'Cập nhật' })));
  await step('cart-quantity', resp);
  expect((await row(a).locator('input[name=quantity]:not([type=hidden])').inputValue()) === '2', `${mode}: quantity not changed`);
  resp = await d.navigate(() => d.click(row(c).locator('button', { hasText: 'Bỏ khỏi giỏ' })));
  await step('cart-removed', resp);
  expect((await row(c).count()) === 0 && (await row(b).count()) === 1, `${mode}: line not removed`);

  // Checkout: a bad phone shows the inline error and keeps what was typed.
  resp = await d.navigate(() => d.click('main a[href="/thanh-toan"]'));
  await step('checkout', resp);
  const phone = `09${String(crypto.randomInt(10000000, 99999999))}`;
  await d.fill('form[action="/thanh-toan"] input[name=name]', 'Trần Thị Mai');
  await d.fill('form[action="/thanh-toan"] input[name=phone]', '12345');
  // Issue 32: the address from the 2025 lists. The province, then its wards: with
  // JavaScript they come at once and typing filters them; without, after "Chọn tỉnh".
  await d.choose('form[action="/thanh-toan"] select[name=province_code]', '01');
  if (mode === 'nojs') {
    resp = await d.navigate(() => d.click('form[action="/thanh-toan"] button[value=province]'));
    await step('checkout-province', resp);
    expect((await page.inputValue('form[action="/thanh-toan"] input[name=name]')) === 'Trần Thị Mai', `${mode}: the name was lost choosing the province`);
  } else {
    expect((await page.locator('form[action="/thanh-toan"] button[value=province]').count()) === 0, `${mode}: "Chọn tỉnh" shown with JavaScript`);
    await page.waitForFunction(() => document.querySelectorAll('select[name=ward_code] option').length > 100);
    await d.fill('form[action="/thanh-toan"] input.ward-filter', 'hoan kiem');
    await page.waitForFunction(() => document.querySelectorAll('select[name=ward_code] option').length === 2);
  }
  await d.choose('form[action="/thanh-toan"] select[name=ward_code]', '00070');
  await d.fill('form[action="/thanh-toan"] input[name=street]', 'Số 5 ngõ 12 Hàng Bông');
  resp = await d.navigate(() => d.click('form[action="/thanh-toan"] button[value=quote]'));
  await step('checkout-quote', resp);
  expect((await page.textContent('main')).includes('Người bán tự giao: 20.000 ₫'), `${mode}: no delivery fee shown`);
  if (mode === 'phone') {
    // GHN quoted beside the shop's own delivery; choosing it changes the total.
    const ghn = page.locator('form[action="/thanh-toan"] input[type=radio][name^="ship."][value=ghn]').first();
    expect((await ghn.count()) === 1, `${mode}: no GHN quote`);
    expect((await page.textContent('main')).includes('Giao Hàng Nhanh (GHN) (dự kiến giao 10/12): 32.000 ₫'), `${mode}: GHN's fee and day not shown`);
    const before = vnd((await page.textContent('main p.price.big')).replace('Tổng phải trả:', ''));
    await ghn.check();
    resp = await d.navigate(() => d.click('form[action="/thanh-toan"] button[value=quote]'));
    await step('checkout-ghn', resp);
    const after = vnd((await page.textContent('main p.price.big')).replace('Tổng phải trả:', ''));
    expect(after === before + 12000, `${mode}: GHN chosen: total ${after}, was ${before}`);
  }
  const ways = await page.locator('form[action="/thanh-toan"] input[type=radio][name^="ship."]:checked').count();
  expect(ways === 2, `${mode}: ${ways} ways to ship chosen, expected one per shop`);
  const quoted = vnd((await page.textContent('main p.price.big')).replace('Tổng phải trả:', ''));
  resp = await d.navigate(() => d.click('form[action="/thanh-toan"] button[value=place]'), 422);
  await step('checkout-error', resp);
  const phoneError = page.locator('label:has(input[name=phone]) + p.error');
  expect(await phoneError.count() === 1, `${mode}: no inline error under the phone`);
  expect((await page.getAttribute('form[action="/thanh-toan"] input[name=phone]', 'aria-describedby')) === (await phoneError.getAttribute('id')),
    `${mode}: the phone field does not point screen readers to its error`);
  expect((await page.inputValue('form[action="/thanh-toan"] input[name=name]')) === 'Trần Thị Mai', `${mode}: the name was lost`);
  expect((await page.inputValue('form[action="/thanh-toan"] select[name=ward_code]')) === '00070', `${mode}: the ward was lost`);
  await d.fill('form[action="/thanh-toan"] input[name=phone]', phone);
  resp = await d.navigate(() => d.click('form[action="/thanh-toan"] button[value=place]'));
  await step('pay', resp);
  const code = new URL(page.url()).pathname.split('/').pop();
  expect(/^CL/.test(code), `${mode}: not a payment page: ${page.url()}`);
  const amount = vnd(await page.textContent('#pay-amount'));
  expect(amount === quoted, `${mode}: the payment asks ${amount}, the checkout said ${quoted}`);
  // Issue 31, item 9: copy buttons for the account number, the amount and the content, with
  // JavaScript only (without it the text is there to select).
  const copies = await page.locator('button.copy-btn').count();
  if (mode === 'nojs') {
    expect(copies === 0, `${mode}: copy buttons without JavaScript`);
  } else {
    expect(copies === 3, `${mode}: ${copies} copy buttons, expected 3`);
    if (mode === 'phone') {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(page.url()).origin });
      const content = page.locator('dd.copy', { hasText: code }).locator('button.copy-btn');
      await content.click();
      await content.filter({ hasText: 'Đã chép' }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      expect(copied.includes(code), `${mode}: the transfer content was not copied: ${copied}`);
      const amountButton = page.locator('dd:has(#pay-amount) button.copy-btn');
      await amountButton.click();
      await amountButton.filter({ hasText: 'Đã chép' }).waitFor();
      const copiedAmount = await page.evaluate(() => navigator.clipboard.readText());
      expect(copiedAmount === String(amount), `${mode}: the amount copied was ${copiedAmount}, not ${amount}`);
    }
  }
  const orders = await page.locator('main ul li', { hasText: `${code}-` }).count();
  expect(orders === 2, `${mode}: ${orders} orders for two shops`);

  // The bank's webhook; the page shows paid in place (without JavaScript: after its
  // "Cập nhật trạng thái" link).
  await bankTransfer(base, secret, `FT-JOURNEY-${mode}-${code}`, code, amount);
  if (mode === 'nojs') {
    resp = await d.navigate(() => d.click(`main a[href="/pay/${code}"]`));
  } else {
    await page.waitForFunction(() => document.getElementById('pay-status').textContent === 'Đã thanh toán', null, { timeout: 15000 });
  }
  expect((await page.textContent('#pay-status')) === 'Đã thanh toán', `${mode}: not shown as paid`);
  await step('paid', resp);

  // The pay page's "Theo dõi đơn hàng" opens the order page; the browser that ordered is
  // not asked the phone.
  resp = await d.navigate(() => d.click(`main a[href="/don-hang/${code}"]`));
  await step('order page', resp);
  expect((await page.locator('section.shop-block').count()) === 2, `${mode}: the order page shows both shops' orders`);
  expect((await page.locator('input[name=phone]').count()) === 0, `${mode}: the phone was asked again`);

  // Order tracking with the phone number.
  resp = await d.navigate(() => d.click('header a[href="/tra-cuu-don"]'));
  await step('lookup', resp);
  await d.fill('#code', code);
  await d.fill('#phone', phone);
  resp = await d.navigate(() => d.click('main form[action="/tra-cuu-don"] button[type=submit]'));
  await step('tracked', resp);
  expect((await page.textContent('h1')).includes(code), `${mode}: tracking shows ${await page.textContent('h1')}`);
  expect((await page.locator('section.shop-block').count()) === 2, `${mode}: tracking shows both orders`);
  expect((await page.textContent('main')).includes('Đã thanh toán'), `${mode}: tracking does not say paid`);

  for (const u of d.unfocused) failures.push(`${mode}: focus not visible on ${u}`);
  await context.close();
  return { mode, payment: code, phone, orders };
}

const browser = await launch();
try {
  for (const mode of modes) {
    try {
      console.log(JSON.stringify(await journey(browser, mode)));
    } catch (e) {
      failures.push(`${mode}: ${e.message}`);
    }
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`ok: buyer journey in ${modes.join(', ')}`);
