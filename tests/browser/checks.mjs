// What every browser test checks on every page it visits: the page fits the viewport (a
// phone page also 360 px; no sideways scrolling), axe-core finds no serious or critical
// violation, HTML + CSS weigh at most 60 KB, images carry width and height and are lazy below
// the fold, and the Content-Security-Policy refuses nothing. Shared by fits.mjs and the
// journeys, with the browser's launch options and the signed bank webhook.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';

const require = createRequire(import.meta.url);
export const { chromium } = require('playwright-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const MAX_WEIGHT = 60 * 1024;
const cssSizes = new Map();

// A full-page screenshot for the record. Chromium now and then answers "Unable to capture
// screenshot" under load: it is tried three times, then noted and skipped, since a picture
// is evidence, not a check (every check runs on the page itself).
export async function screenshot(page, path) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.screenshot({ path, fullPage: true });
      return;
    } catch (e) {
      if (attempt >= 3) {
        console.error(`screenshot skipped (${path}): ${String(e.message).split('\n')[0]}`);
        return;
      }
    }
  }
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Collects CSP refusals of a page; `take()` returns and clears them. */
export function watchCsp(page) {
  const refused = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) refused.push(m.text()); });
  return { take: () => refused.splice(0) };
}

/** Document width and the first element sticking out past the viewport, to say what to fix. */
export async function overflow(page) {
  return page.evaluate(() => {
    const doc = document.documentElement.scrollWidth;
    let wide = '';
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > window.innerWidth + 1) {
        wide = `${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} (${Math.round(r.right)} px)`;
        break;
      }
    }
    return { doc, wide };
  });
}

/** Serious and critical axe-core violations, one line each. */
export async function axeViolations(page, jsOff = false) {
  // page.evaluate runs outside the page's CSP (and with page JavaScript disabled), so axe
  // needs no exception in the policy. With page JavaScript disabled timers never fire, and
  // axe waits on them: they become microtasks, which still run.
  if (jsOff) {
    await page.evaluate(() => {
      window.setTimeout = (f, _ms, ...args) => { Promise.resolve().then(() => f(...args)); return 0; };
      window.clearTimeout = () => {};
    });
  }
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
}

/** HTML (the response body) + every stylesheet it links, in bytes. */
export async function weight(page, html) {
  let total = html.length;
  const sheets = await page.evaluate(() => [...document.querySelectorAll('link[rel=stylesheet]')].map((l) => l.href));
  for (const href of sheets) {
    if (!cssSizes.has(href)) cssSizes.set(href, (await (await page.request.get(href)).body()).length);
    total += cssSizes.get(href);
  }
  return total;
}

/** Images without width and height, or below the fold and not lazy. */
export async function imageProblems(page) {
  const images = await page.evaluate(() => [...document.images].map((img) => ({
    src: img.getAttribute('src'),
    sized: img.hasAttribute('width') && img.hasAttribute('height'),
    below: img.getBoundingClientRect().top > window.innerHeight,
    lazy: img.loading === 'lazy',
  })));
  const out = [];
  for (const img of images) {
    if (!img.sized) out.push(`${img.src} has no width and height`);
    if (img.below && !img.lazy) out.push(`${img.src} is below the fold but not lazy`);
  }
  return out;
}

/**
 * Every check on the page as it is now; `html` is the body of the response that made it;
 * `jsOff` when the page's context has JavaScript disabled.
 * Returns { failures: [...], weight }.
 */
export async function checkPage(page, where, html, csp, jsOff = false, maxWeight = MAX_WEIGHT) {
  const failures = [];
  const width = page.viewportSize().width;
  const { doc, wide } = await overflow(page);
  if (doc > width) failures.push(`${where}: ${doc} px wide at ${width} px, e.g. ${wide}`);
  if (width > 360 && width <= 600) {
    // A phone page must also fit the narrowest common phone.
    const { height } = page.viewportSize();
    await page.setViewportSize({ width: 360, height });
    const narrow = await overflow(page);
    if (narrow.doc > 360) failures.push(`${where}: ${narrow.doc} px wide at 360 px, e.g. ${narrow.wide}`);
    await page.setViewportSize({ width, height });
  }
  for (const v of await axeViolations(page, jsOff)) failures.push(`axe ${where}: ${v}`);
  const w = await weight(page, html);
  if (w > maxWeight) failures.push(`weight ${where}: HTML + CSS ${w} bytes > ${maxWeight}`);
  for (const p of await imageProblems(page)) failures.push(`image ${where}: ${p}`);
  for (const c of csp.take()) failures.push(`CSP ${where}: ${c}`);
  return { failures, weight: w };
}

/** A transfer the bank reports to our own webhook format, signed with `secret`. */
export async function bankTransfer(base, secret, id, code, amount) {
  const body = JSON.stringify({ id, amount, description: `MBVCB.3278907687.${code}.CT tu 0987654321` });
  const t = Math.floor(Date.now() / 1000);
  const sig = crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  const r = await fetch(`${base}/webhooks/bank`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-cholang-signature': `t=${t},v1=${sig}` },
    body,
  });
  if (r.status !== 200) throw new Error(`webhook answered ${r.status}`);
}
