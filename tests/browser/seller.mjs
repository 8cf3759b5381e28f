// The seller's, the moderator's and the admin's journeys in a real browser, at one viewport:
// the seller logs in → dashboard → adds a product with a photo → edits its stock → proposes a
// new price and votes for it → two other sellers vote it through → the price shows on the product page and in
// search → accepts, ships and delivers a paid order → turns on Telegram notices and sends a
// test notice. The moderator approves the open proposal; the admin assigns an unmatched
// transfer to its payment on the reconciliation page. Every page visited gets checks.mjs and a
// screenshot in SHOTS_DIR.
// Usage: node seller.mjs BASE_URL SHOTS_DIR SETUP_JSON
// SETUP_JSON: {"width", "height", "seller", "voters": [login…], "moderator", "admin", "password",
//   "photo": path of a PNG, "order": a paid order of the seller's shop, "assign": {"payment",
//   "description" of an unmatched transfer}, "telegram_chat"}
import fs from 'node:fs';
import { launch, screenshot, watchCsp, checkPage } from './checks.mjs';

const [base, shots, setupJson] = process.argv.slice(2);
const setup = JSON.parse(setupJson);
const tag = setup.width > 600 ? 'desktop' : 'phone';
fs.mkdirSync(shots, { recursive: true });
const failures = [];
setTimeout(() => {
  console.error(`seller.mjs: still running after 5 minutes\n${failures.join('\n')}`);
  process.exit(1);
}, 300000).unref();

function expect(cond, what) {
  if (!cond) throw new Error(`${tag}: ${what}`);
}

const browser = await launch();
let n = 0;

/** A logged-in person in a browser context of their own. */
async function person(who) {
  const context = await browser.newContext({ viewport: { width: setup.width, height: setup.height } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const csp = watchCsp(page);
  const p = {
    page,
    context,
    // Each step: a screenshot, then every check.
    async step(name, resp) {
      n += 1;
      await screenshot(page, `${shots}/${tag}-${String(n).padStart(2, '0')}-${name}.png`);
      const checked = await checkPage(page, `${tag} ${name} (${new URL(page.url()).pathname})`, await resp.body(), csp);
      failures.push(...checked.failures);
    },
    async go(path) {
      const resp = await page.goto(`${base}${path}`);
      expect(resp.status() === 200, `${path} answered ${resp.status()}`);
      return resp;
    },
    /** Clicks something that leads to a new page; returns its response. */
    async click(target, status = 200) {
      const loc = typeof target === 'string' ? page.locator(target).first() : target.first();
      const [resp] = await Promise.all([page.waitForNavigation(), loc.click()]);
      expect(resp.status() === status, `${resp.url()} answered ${resp.status()}, not ${status}`);
      return resp;
    },
    /** Picks the option of `select` whose text contains `text`. */
    async choose(select, text) {
      const value = await page.$eval(select, (s, t) => [...s.options].find((o) => o.text.includes(t))?.value, text);
      expect(value !== undefined, `no option “${text}” in ${select}`);
      await page.selectOption(select, value);
    },
  };
  await p.go('/dang-nhap');
  await page.fill('input[name=login]', who);
  await page.fill('input[name=password]', setup.password);
  const resp = await p.click('form[action="/dang-nhap"] button[type=submit]');
  expect(new URL(page.url()).pathname === '/quan-ly', `${who} lands on ${page.url()}`);
  p.landing = resp;
  return p;
}

const out = {};
try {
  // The seller: dashboard, a new product with a photo, its stock edited.
  const s = await person(setup.seller);
  const page = s.page;
  await s.step('dashboard', s.landing);
  let resp = await s.click('a.button[href^="/quan-ly/san-pham/moi?shop="]');
  await s.step('new-product', resp);
  const productName = `Màn tuyn trẻ em 1m2 in hoa ${tag}`;
  await s.choose('select[name=price_item_id]', 'trẻ em');
  await page.fill('input[name=name]', productName);
  await s.choose('select[name=category]', 'Màn tuyn');
  await page.fill('input[name=stock]', '12');
  await page.fill('textarea[name=description]', 'Màn tuyn cho nôi em bé, in hoa nhí, viền vải mềm.');
  await page.setInputFiles('input[type=file][name=photo]', setup.photo);
  resp = await s.click('main form.form button[type=submit]');
  await s.step('product-created', resp);
  const editPath = new URL(page.url()).pathname;
  const slug = editPath.split('/').pop();
  expect(page.url().includes('ok=product-created'), `after creating: ${page.url()}`);
  expect((await page.locator('main img').count()) >= 1, 'the uploaded photo is not on the edit page');
  await page.fill('input[name=stock]', '20');
  resp = await s.click('main form.form button[type=submit]');
  await s.step('stock-saved', resp);
  expect(page.url().includes('ok=product-saved'), `after saving: ${page.url()}`);
  expect((await page.inputValue('input[name=stock]')) === '20', 'stock not saved');
  resp = await s.go(`/san-pham/${slug}`);
  await s.step('product-page', resp);
  expect((await page.textContent('h1')).trim() === productName, 'product page title');
  expect(await page.locator('img.main-photo').count() === 1, 'no photo on the product page');
  out.product = slug;

  // A new price proposed on the village board.
  resp = await s.go('/quan-ly');
  resp = await s.click('main a[href$="/bang-gia"]');
  await s.step('board', resp);
  const item = 'Màn chụp tự bung';
  await s.choose('#f-price_item_id', item);
  await page.fill('#f-price_vnd', String(setup.new_price));
  await page.fill('#f-reason', 'Giá sợi lưới và khung thép tăng từ tháng trước');
  resp = await s.click('form[action$="/bang-gia/de-xuat"] button[type=submit]');
  await s.step('proposed', resp);
  const newPrice = new Intl.NumberFormat('vi-VN').format(setup.new_price);
  const proposal = page.locator('li.proposal', { hasText: item }).filter({ hasText: newPrice });
  expect(await proposal.count() === 1, 'the proposal is not on the board');
  const proposalId = await proposal.getAttribute('id');
  // Proposing is not voting: the seller votes for her own proposal like everyone else.
  resp = await s.click(`#${proposalId} button[name=approve][value="1"]`);
  expect(page.url().includes('ok=voted'), `own vote: ${page.url()}`);

  // Two other sellers of the village vote for it.
  for (const [i, login] of setup.voters.entries()) {
    const v = await person(login);
    resp = await v.go('/lang/phu-doi/bang-gia');
    if (i === 0) await v.step('voter-board', resp);
    resp = await v.click(`#${proposalId} button[name=approve][value="1"]`);
    if (i === 0) await v.step('voted', resp);
    expect(v.page.url().includes('ok=voted'), `vote: ${v.page.url()}`);
    await v.context.close();
  }

  // The price applies on the product page and in search.
  resp = await s.go('/lang/phu-doi/bang-gia');
  expect((await page.locator(`#${proposalId} .status`).textContent()).includes('thông qua'), 'the proposal did not pass');
  let card;
  for (let tries = 0; tries < 40 && !card; tries += 1) {
    resp = await s.go('/tim-kiem?q=man+chup+tu+bung');
    const cards = await page.$$eval('ul.cards li.card', (els) => els.map((el) => ({
      href: el.querySelector('a').getAttribute('href'), name: el.querySelector('h3').textContent, price: el.querySelector('.price').textContent,
    })));
    card = cards.find((c) => c.name.includes(item) && c.price.includes(newPrice));
    if (!card) await page.waitForTimeout(250);
  }
  expect(card, `search does not show ${newPrice} for ${item}`);
  await s.step('search-new-price', resp);
  resp = await s.click(`ul.cards a[href="${card.href}"]`);
  await s.step('product-new-price', resp);
  expect((await page.textContent('p.price.big')).includes(newPrice), 'the product page keeps the old price');

  // A paid order: accept, ship with a carrier and tracking code, deliver.
  resp = await s.go('/quan-ly');
  resp = await s.click('main a.button[href="/quan-ly/don-hang"]');
  await s.step('orders', resp);
  const order = `#don-${setup.order}`;
  resp = await s.click(page.locator(order).locator('button', { hasText: 'Nhận đơn' }));
  resp = await s.click('nav.tabs a[href$="tab=dang-xu-ly"]');
  await s.step('order-accepted', resp);
  await page.fill(`#carrier-${setup.order}`, 'Viettel Post');
  await page.fill(`#track-${setup.order}`, 'VTP123456789');
  resp = await s.click(page.locator(order).locator('button', { hasText: 'Đã gửi hàng' }));
  resp = await s.click('nav.tabs a[href$="tab=dang-giao"]');
  await s.step('order-shipped', resp);
  expect((await page.textContent(order)).includes('VTP123456789'), 'tracking code not shown');
  // "Đã giao xong" asks whether the buyer has the goods before it is recorded.
  await page.locator(order).locator('summary', { hasText: 'Đã giao xong' }).click();
  expect((await page.textContent(order)).includes('Người mua đã nhận hàng chưa?'), 'delivered is not asked first');
  await page.locator(order).locator('input[name=confirm]').check();
  resp = await s.click(page.locator(order).locator('button', { hasText: 'Xác nhận đã giao xong' }));
  resp = await s.click('nav.tabs a[href$="tab=xong"]');
  await s.step('order-delivered', resp);
  expect(await page.locator(order).count() === 1, 'the order is not under delivered');

  // Notice channels: Telegram on, then a test notice.
  resp = await s.go('/quan-ly');
  resp = await s.click('main a[href^="/quan-ly/cua-hang/"]');
  await s.step('shop-settings', resp);
  const shopPath = new URL(page.url()).pathname;
  // Phone and Zalo lead; Telegram is folded away until asked for.
  if (!(await page.$('details:has(input[name=telegram_chat_id])[open]'))) {
    await page.click('summary:has-text("Telegram")');
  }
  await page.fill('input[name=telegram_chat_id]', setup.telegram_chat);
  await page.check('input[name=notify_telegram]');
  resp = await s.click('main form.form button[type=submit]');
  await s.step('shop-saved', resp);
  expect(page.url().includes('ok=shop-saved'), `after saving the shop: ${page.url()}`);
  resp = await s.go(shopPath);
  expect(await page.isChecked('input[name=notify_telegram]'), 'Telegram not kept');
  resp = await s.click('main form[action$="/thu-thong-bao"] button');
  await s.step('test-notice', resp);
  expect(page.url().includes('ok=test-sent'), `after the test notice: ${page.url()}`);
  await s.context.close();

  // The moderator approves the open proposal.
  const m = await person(setup.moderator);
  resp = await m.go('/lang/phu-doi/bang-gia');
  await m.step('moderator-board', resp);
  const open = m.page.locator('li.proposal', { has: m.page.locator('form[action$="/duyet"]') }).first();
  out.approved = await open.getAttribute('id');
  await open.locator('input[name=confirm]').check();
  resp = await m.click(open.locator('form[action$="/duyet"] button'));
  await m.step('moderator-approved', resp);
  expect(m.page.url().includes('ok=approved'), `after approving: ${m.page.url()}`);
  await m.context.close();

  // The admin assigns the unmatched transfer to its payment.
  const a = await person(setup.admin);
  resp = await a.go('/quan-tri/doi-soat');
  await a.step('reconciliation', resp);
  const row = a.page.locator('li.proposal', { hasText: setup.assign.description });
  expect(await row.count() === 1, 'the unmatched transfer is not listed');
  await row.locator('input[name=payment_code]').fill(setup.assign.payment);
  resp = await a.click(row.locator('form[action="/quan-tri/doi-soat/gan"] button'));
  await a.step('assigned', resp);
  expect(await row.count() === 0, 'the transfer is still unmatched');
  await a.context.close();
} catch (e) {
  failures.push(e.message);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify(out));
console.log(`ok: seller, moderator and admin journeys at ${setup.width} px`);
