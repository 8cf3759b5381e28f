// Buyer protection in a real browser, on a phone (390 × 844, checked at 360 too): the buyer
// opens the receipt email's link, confirms receipt through the confirmation step; on a second
// order reports a problem with the request form (reason, what happened, an amount typed the
// Vietnamese way, a photo) and sees it waiting for the seller. Every page visited gets
// checks.mjs and a screenshot. Without JavaScript too (mode "nojs").
// Usage: node protection.mjs BASE_URL SHOTS_DIR CONFIRM_LINK REQUEST_LINK PHOTO_PATH [MODE]
import fs from 'node:fs';
import { launch, screenshot, watchCsp, checkPage } from './checks.mjs';

const [base, shots, confirmLink, requestLink, photo, modeArg] = process.argv.slice(2);
const mode = modeArg || 'phone';
fs.mkdirSync(shots, { recursive: true });
const failures = [];
setTimeout(() => {
  console.error(`protection.mjs: still running after 3 minutes\n${failures.join('\n')}`);
  process.exit(1);
}, 180000).unref();

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, javaScriptEnabled: mode !== 'nojs' });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const csp = watchCsp(page);
  let n = 0;
  const step = async (name, resp) => {
    n += 1;
    await screenshot(page, `${shots}/${mode}-${String(n).padStart(2, '0')}-${name}.png`);
    const checked = await checkPage(page, `${mode} ${name} (${new URL(page.url()).pathname})`, await resp.body(), csp, mode === 'nojs');
    failures.push(...checked.failures);
  };
  const navigate = async (act) => {
    const [resp] = await Promise.all([page.waitForNavigation(), act()]);
    expect(resp && resp.status() === 200, `${page.url()} answered ${resp && resp.status()}`);
    return resp;
  };
  const main = () => page.textContent('body');

  // 1. The link from the receipt email; "Đã nhận được hàng", then the confirmation step.
  let resp = await page.goto(`${base}${confirmLink}`);
  expect(resp.status() === 200, `the receipt link answered ${resp.status()}`);
  await step('order', resp);
  expect(!new URL(page.url()).search.includes('t='), 'the token stays in the address bar');
  expect((await main()).includes('Chợ Làng đang giữ tiền'), 'the page does not say the money is held');
  resp = await navigate(() => page.getByRole('link', { name: 'Đã nhận được hàng' }).click());
  await step('confirm-step', resp);
  resp = await navigate(() => page.getByRole('button', { name: 'Đúng, tôi đã nhận đủ hàng' }).click());
  await step('confirmed', resp);
  expect((await main()).includes('Cảm ơn bạn!'), `no thanks: ${(await main()).slice(0, 400)}`);
  expect((await main()).includes('Người mua xác nhận đã nhận được hàng'), 'the timeline lacks the confirmation');
  expect((await page.getByRole('link', { name: 'Đã nhận được hàng' }).count()) === 0, 'the button is still offered');

  // 2. A second order: "Có vấn đề với đơn hàng".
  resp = await page.goto(`${base}${requestLink}`);
  await step('order-2', resp);
  resp = await navigate(() => page.getByRole('link', { name: 'Có vấn đề với đơn hàng' }).click());
  await step('request-form', resp);
  await page.getByLabel('Hàng bị hỏng').check();
  await page.fill('#text', 'Màn bị rách một góc khi mở hộp ra');
  await page.fill('#amount', '60.000');
  await page.setInputFiles('#photo', photo);
  resp = await navigate(() => page.getByRole('button', { name: 'Gửi yêu cầu' }).click());
  await step('request-sent', resp);
  const text = await main();
  expect(text.includes('Đã gửi yêu cầu'), `no notice: ${text.slice(0, 300)}`);
  expect(text.includes('Chờ người bán trả lời') && text.includes('60.000'), `the request is not shown: ${text.slice(0, 600)}`);
  expect((await page.locator('main img[alt="Ảnh bạn gửi"]').count()) === 1, 'the photo is not shown');
  await context.close();
} catch (e) {
  failures.push(`${mode}: ${e.message}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`ok: buyer protection journey (${mode})`);
