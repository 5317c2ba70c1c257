// Drives `matnet serve`'s page in headless Chromium: draws a digit stroke
// with the mouse, reads the class the page shows, checks that every matrix
// view drew something, and saves screenshots. Prints one JSON line.
//
// Usage: node drive.mjs URL OUT_DIR [DIGIT]   (DIGIT: 1 or 7, default 1)
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [url, out, digit = '1'] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: node drive.mjs URL OUT_DIR [DIGIT]');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'matnet-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 1000 },
});
const errors = [];
const result = { errors };
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  await page.waitForSelector('body[data-weights]', { timeout: 20000 });

  // The stroke, in pad coordinates (280×280): a "1" is one vertical line,
  // a "7" a bar across the top and a diagonal down to the left.
  const strokes = digit === '7'
    ? [[[70, 60], [210, 60], [120, 240]]]
    : [[[140, 40], [140, 240]]];
  const pad = await page.locator('#pad').boundingBox();
  for (const stroke of strokes) {
    await page.mouse.move(pad.x + stroke[0][0], pad.y + stroke[0][1]);
    await page.mouse.down();
    for (const [x, y] of stroke.slice(1)) {
      await page.mouse.move(pad.x + x, pad.y + y, { steps: 25 });
    }
    await page.mouse.up();
  }
  result.updatesWhileDrawing = Number(await page.evaluate(() => document.body.dataset.updates || 0));
  // Wait until the page has answered the finished stroke: no update for 500 ms.
  let last = -1;
  for (let i = 0; i < 40; i++) {
    await page.waitForTimeout(250);
    const n = await page.evaluate(() => document.body.dataset.updates || '0');
    if (n === last) break;
    last = n;
  }
  result.updates = Number(last);
  result.predicted = await page.evaluate(() => document.body.dataset.predicted);
  result.top = (await page.locator('#top').textContent()).trim();
  // Every matrix view: non-blank means not all of its pixels are the same.
  result.views = await page.evaluate(() => [...document.querySelectorAll('#network canvas.matrix')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let distinct = new Set();
    for (let p = 0; p < d.length && distinct.size < 3; p += 4) distinct.add((d[p] << 16) | (d[p + 1] << 8) | d[p + 2]);
    return { name: c.dataset.name, section: c.closest('.views').id, width: c.width, height: c.height, nonBlank: distinct.size > 1 };
  }));
  await page.screenshot({ path: path.join(out, 'serve-draw.png') });
  await page.screenshot({ path: path.join(out, 'serve-draw-full.png'), fullPage: true });

  if (await page.locator('#tab-generate').isEnabled()) {
    await page.click('#tab-generate');
    await page.waitForFunction(() => document.querySelector('#grid').width > 28, null, { timeout: 20000 });
    await page.locator('#walk').fill('0.5');
    await page.waitForTimeout(1500);
    result.generated = await page.evaluate(() => document.querySelector('#grid').width);
    await page.screenshot({ path: path.join(out, 'serve-generate.png'), clip: { x: 0, y: 0, width: 1000, height: 820 } });
  }
} catch (e) {
  errors.push(String(e));
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
