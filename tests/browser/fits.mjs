// Every page of the journeys fits a phone: no sideways scrolling at 360 and 390 px, and the
// Content-Security-Policy refuses nothing. A screenshot of each page goes to SHOTS_DIR.
// Usage: node fits.mjs BASE_URL SHOTS_DIR JOURNEYS_JSON
// JOURNEYS_JSON: [{"name", "login": [login, password] | null, "paths": ["/", …]}, …]
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const [base, shots, journeysJson] = process.argv.slice(2);
const journeys = JSON.parse(journeysJson);
fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const failures = [];
let visited = 0;
try {
  for (const width of [360, 390]) {
    for (const j of journeys) {
      const context = await browser.newContext({ viewport: { width, height: 844 } });
      const page = await context.newPage();
      const refused = [];
      page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) refused.push(m.text()); });
      if (j.login) {
        await page.goto(`${base}/dang-nhap`);
        await page.fill('input[name=login]', j.login[0]);
        await page.fill('input[name=password]', j.login[1]);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/dang-nhap"] button[type=submit]')]);
      }
      for (const path of j.paths) {
        const r = await page.goto(`${base}${path}`);
        visited += 1;
        const name = `${width}-${j.name}-${path.replace(/[^a-z0-9]+/gi, '_')}.png`;
        await page.screenshot({ path: `${shots}/${name}`, fullPage: true });
        const { doc, wide } = await page.evaluate(() => {
          const doc = document.documentElement.scrollWidth;
          // The widest element sticking out, to say what to fix.
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
        if (r.status() >= 500) failures.push(`${width} px ${j.name} ${path}: HTTP ${r.status()}`);
        if (doc > width) failures.push(`${width} px ${j.name} ${path}: ${doc} px wide, e.g. ${wide}`);
      }
      if (refused.length) failures.push(`${width} px ${j.name}: CSP refused ${refused.join(' | ')}`);
      await context.close();
    }
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`ok: ${visited} page views fit 360 and 390 px`);
