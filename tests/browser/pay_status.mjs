// The payment page in a real browser: it must flip to "Đã thanh toán" without a reload
// when the bank webhook arrives (after first showing a partial payment).
// Usage: node pay_status.mjs BASE_URL PAYMENT_CODE AMOUNT BANK_SECRET
import { launch, bankTransfer } from './checks.mjs';

const [base, code, amountStr, secret] = process.argv.slice(2);
const amount = Number(amountStr);

const transfer = (id, amt) => bankTransfer(base, secret, id, code, amt);

const browser = await launch();
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
