// Every page of the journeys fits a phone: no sideways scrolling at 360 and 390 px, and the
// Content-Security-Policy refuses nothing. At 390 px each page also gets the rest of
// checks.mjs: axe-core (no serious or critical violation, which covers labelled fields and
// contrast), weight (HTML + CSS ≤ 60 KB uncompressed) and images (width and height given,
// lazy below the fold). A screenshot of each page goes to SHOTS_DIR.
// Usage: node fits.mjs BASE_URL SHOTS_DIR JOURNEYS_JSON
// JOURNEYS_JSON: [{"name", "login": [login, password] | null, "paths": ["/", …],
//   "max_weight": bytes (optional: a reference page such as /api/docs may weigh more)}, …]
import fs from 'node:fs';
import { launch, screenshot, watchCsp, overflow, checkPage } from './checks.mjs';

const [base, shots, journeysJson] = process.argv.slice(2);
const journeys = JSON.parse(journeysJson);
fs.mkdirSync(shots, { recursive: true });

const browser = await launch();
const failures = [];
let visited = 0;
const weights = [];
try {
  for (const width of [360, 390]) {
    for (const j of journeys) {
      const context = await browser.newContext({ viewport: { width, height: 844 } });
      const page = await context.newPage();
      const csp = watchCsp(page);
      if (j.login) {
        await page.goto(`${base}/dang-nhap`);
        await page.fill('input[name=login]', j.login[0]);
        await page.fill('input[name=password]', j.login[1]);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/dang-nhap"] button[type=submit]')]);
      }
      for (const path of j.paths) {
        const r = await page.goto(`${base}${path}`);
        visited += 1;
        const where = `${width} px ${j.name} ${path}`;
        await screenshot(page, `${shots}/${width}-${j.name}-${path.replace(/[^a-z0-9]+/gi, '_')}.png`);
        if (r.status() >= 500) failures.push(`${where}: HTTP ${r.status()}`);
        if (width === 390) {
          const checked = await checkPage(page, where, await r.body(), csp, false, j.max_weight || undefined);
          failures.push(...checked.failures);
          weights.push(checked.weight);
        } else {
          const { doc, wide } = await overflow(page);
          if (doc > width) failures.push(`${where}: ${doc} px wide, e.g. ${wide}`);
          for (const c of csp.take()) failures.push(`CSP ${where}: ${c}`);
        }
      }
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
console.log(`ok: ${visited} page views fit 360 and 390 px; ${weights.length} pass axe-core, images sized; heaviest HTML + CSS ${Math.max(...weights)} bytes`);
