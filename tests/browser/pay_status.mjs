// The payment page in a real browser: it must flip to "Đã thanh toán" without a reload
// when the bank webhook arrives (after first showing a partial payment).
// Usage: node pay_status.mjs BASE_URL PAYMENT_CODE AMOUNT BANK_SECRET
import { createRequire } from 'node:module';
import crypto from 'node:crypto';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const [base, code, amountStr, secret] = process.argv.slice(2);
const amount = Number(amountStr);

async function transfer(id, amt) {
  const body = JSON.stringify({ id, amount: amt, description: `MBVCB.3278907687.${code}.CT tu 0123` });
  const t = Math.floor(Date.now() / 1000);
  const sig = crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  const r = await fetch(`${base}/webhooks/bank`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-cholang-signature': `t=${t},v1=${sig}` },
    body,
  });
  if (r.status !== 200) throw new Error(`webhook answered ${r.status}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  let loads = 0;
  page.on('load', () => { loads += 1; });
  await page.goto(`${base}/pay/${code}`);
  const status = () => page.textContent('#pay-status');
  if ((await status()) !== 'Chờ chuyển khoản') throw new Error(`starts as ${await status()}`);

  await transfer(`FT-BROWSER-${code}-1`, 20000);
  await page.waitForFunction(() => document.getElementById('pay-status').textContent === 'Đã nhận một phần', null, { timeout: 15000 });
  const remaining = await page.textContent('#pay-amount');
  const want = new Intl.NumberFormat('vi-VN').format(amount - 20000) + ' ₫';
  if (remaining !== want) throw new Error(`remaining shows ${remaining}, want ${want}`);

  await transfer(`FT-BROWSER-${code}-2`, amount - 20000);
  await page.waitForFunction(() => document.getElementById('pay-status').textContent === 'Đã thanh toán', null, { timeout: 15000 });
  if (!(await page.isVisible('#pay-done'))) throw new Error('paid notice not shown');
  if (await page.isVisible('#pay-pending')) throw new Error('QR still shown after payment');
  if (loads !== 1) throw new Error(`page reloaded (${loads} loads)`);
  console.log('ok: status flipped in place');
} finally {
  await browser.close();
}
