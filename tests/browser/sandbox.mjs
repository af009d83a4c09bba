// Drives the sandbox page as a person would: propose a restore as automation, approve it as
// two different responders, and see the user reactivated in the 1Password table.
// Usage: node sandbox.mjs <sandbox base URL> <screenshot path>
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
         '--disable-background-networking', '--disable-component-update'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
// A restore's Approve asks for confirmation, as in Slack.
page.on('dialog', (dialog) => dialog.accept());

try {
  await page.goto(`${base}/sandbox`);

  await page.selectOption('#propose-action', 'restore');
  await page.fill('#propose-email', 'mallory@example.com');
  await page.fill('#propose-reason', 'Laptop recovered and wiped');
  await page.click('#propose-submit');
  await page.locator('#propose-result').filter({ hasText: '201' }).waitFor();

  const card = page.locator('.card').last();
  await card.locator('button[data-action-id="approve"]').waitFor();

  await page.selectOption('#approver', 'U0BOB');
  await card.locator('button[data-action-id="approve"]').click();
  await card.filter({ hasText: 'needs a second approver' }).waitFor();

  await page.selectOption('#approver', 'U0CAT');
  await card.locator('button[data-action-id="approve"]').click();

  await page.locator('#onepassword tr[data-email="mallory@example.com"] .state')
    .filter({ hasText: 'ACTIVE' })
    .waitFor({ timeout: 15000 });
  await card.filter({ hasText: 'Executed' }).waitFor();
  await card.locator('button').first().waitFor({ state: 'detached' });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`ok: mallory reactivated; screenshot at ${screenshot}`);
} catch (error) {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  console.error(`failed: ${error.message}\n(screenshot at ${screenshot})`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
