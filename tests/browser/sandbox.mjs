// Drives the sandbox page as people would: the operator enrolls two approvers' passkeys, automation
// proposes a restore, each approver clicks Approve and confirms the vote with their passkey on
// countersign's own page, and the user is reactivated in the 1Password table. The passkeys live
// in Chromium's DevTools virtual authenticator (CTAP2, internal, resident keys, user verified).
// Usage: node sandbox.mjs <sandbox base URL> <screenshot path>
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
         '--disable-background-networking', '--disable-component-update'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const page = await context.newPage();
// A restore's Approve asks for confirmation, as in Slack.
page.on('dialog', (dialog) => dialog.accept());

// The tab the passkey pages open in, with its platform authenticator.
const keys = await context.newPage();
const devtools = await context.newCDPSession(keys);
await devtools.send('WebAuthn.enable');
await devtools.send('WebAuthn.addVirtualAuthenticator', {
  options: {
    protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
    hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
  },
});

// Opens a passkey page, presses its one button, and waits for the outcome it shows.
async function confirm(url, expected) {
  await keys.goto(url);
  await keys.click('#go');
  const outcome = keys.locator('#outcome');
  await outcome.filter({ hasText: expected }).waitFor({ timeout: 15000 })
    .catch(async () => { throw new Error(`${url}: ${await outcome.textContent()}`); });
}

try {
  await page.goto(`${base}/sandbox`);

  for (const approver of ['U0BOB', 'U0CAT']) {
    await page.selectOption('#approver', approver);
    const link = page.locator('#enroll-link');
    const before = await link.getAttribute('href');
    await page.click('#enroll');
    await page.waitForFunction((old) => {
      const href = document.getElementById('enroll-link').getAttribute('href');
      return href && href !== old;
    }, before);
    await confirm(await link.getAttribute('href'), 'registered');
  }

  await page.selectOption('#propose-action', 'restore');
  await page.fill('#propose-email', 'mallory@example.com');
  await page.fill('#propose-reason', 'Laptop recovered and wiped');
  await page.click('#propose-submit');
  await page.locator('#propose-result').filter({ hasText: '201' }).waitFor();

  const card = page.locator('.card').last();
  await card.locator('button[data-action-id="approve"]').waitFor();

  for (const [approver, expected] of [['U0BOB', '1 of 2'], ['U0CAT', 'approved']]) {
    await page.selectOption('#approver', approver);
    const links = page.locator('#ephemerals a[href*="/passkey/vote/"]');
    const offered = await links.count();
    await card.locator('button[data-action-id="approve"]').click();
    await page.waitForFunction(
      (n) => document.querySelectorAll('#ephemerals a[href*="/passkey/vote/"]').length > n,
      offered,
    );
    await confirm(await links.last().getAttribute('href'), expected);
  }

  await page.bringToFront();
  await page.locator('#onepassword tr[data-email="mallory@example.com"] .state')
    .filter({ hasText: 'ACTIVE' })
    .waitFor({ timeout: 15000 });
  await card.filter({ hasText: 'Executed' }).waitFor();
  await card.filter({ hasText: 'passkey-verified' }).waitFor();
  await card.locator('button').first().waitFor({ state: 'detached' });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`ok: mallory reactivated by two passkey-verified votes; screenshot at ${screenshot}`);
} catch (error) {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  console.error(`failed: ${error.message}\n(screenshot at ${screenshot})`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
