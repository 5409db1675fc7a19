// Drives the demo page (GET /, dev mode) in headless Chromium with playwright-core: two
// users chat, see each other online, one gets a mention notification, markup typed by a
// user stays text, and a dropped connection recovers. Prints one JSON report.
// Usage: node demo_browser.mjs <base-url> [screenshot-dir]
import { chromium } from "playwright-core";

const [base, shotDir] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const XSS = "<script>alert(1)</script>";
const IMG = '<img src=x onerror="alert(2)">';
const report = { errors: [], dialogs: [], pageErrors: [], steps: [] };
const WAIT = { timeout: 10000 };

const killer = setTimeout(() => {
  report.errors.push("timed out");
  console.log(JSON.stringify(report));
  process.exit(1);
}, 90000);

async function openAs(browser, user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await context.newPage();
  page.on("dialog", async (dialog) => {
    report.dialogs.push({ user, message: dialog.message() });
    await dialog.dismiss();
  });
  page.on("pageerror", (err) => report.pageErrors.push({ user, error: String(err) }));
  page.on("console", (msg) => {
    if (msg.type() === "error") report.pageErrors.push({ user, console: msg.text() });
  });
  await page.goto(`${base}/`, WAIT);
  await page.fill("#user-id", user);
  await page.click("#connect");
  await page.waitForSelector('#state[data-state="connected"]', WAIT);
  report.steps.push(`${user} connected`);
  return page;
}

const messageTexts = (page) => page.$$eval("#messages li .text", (els) => els.map((e) => e.textContent));
const messageSeqs = (page) => page.$$eval("#messages li", (els) => els.map((e) => Number(e.dataset.seq)));
const onlineUsers = (page) => page.$$eval("#online li", (els) => els.map((e) => e.dataset.userId));

let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const alice = await openAs(browser, "alice");
  await alice.fill("#new-room-name", "lobby");
  await alice.click("#create-room");
  await alice.waitForFunction(() => document.querySelector("#room-title").textContent.includes("lobby"), null, WAIT);
  await alice.fill("#composer-text", "welcome, first message");
  await alice.click("#send");
  await alice.waitForSelector('#messages li[data-seq="1"]', WAIT);

  const bob = await openAs(browser, "bob");
  const roomButton = bob.locator("#rooms li", { hasText: "lobby" }).locator("button.join");
  await roomButton.click(WAIT);
  await bob.waitForFunction(() => document.querySelector("#room-title").textContent.includes("lobby"), null, WAIT);
  await bob.waitForSelector('#messages li[data-seq="1"]', WAIT); // history on join
  report.bobHistoryOnJoin = await messageTexts(bob);

  await alice.waitForSelector('#online li[data-user-id="bob"]', WAIT);
  await bob.waitForSelector('#online li[data-user-id="alice"]', WAIT);
  report.aliceSeesOnline = await onlineUsers(alice);
  report.bobSeesOnline = await onlineUsers(bob);

  await bob.type("#composer-text", "typing...");
  await alice.waitForFunction(() => document.querySelector("#typing").textContent.includes("bob is typing"), null, WAIT);
  report.aliceTyping = await alice.textContent("#typing");
  await bob.fill("#composer-text", "");

  await alice.fill("#composer-text", "hi @bob, welcome");
  await alice.click("#send");
  await bob.waitForFunction(() => document.querySelector("#unread-count").textContent === "1", null, WAIT);
  report.bobUnread = await bob.textContent("#unread-count");
  report.bobUnreadClass = await bob.getAttribute("#unread-count", "class");

  const scriptsBefore = await bob.$$eval("script", (els) => els.length);
  await alice.fill("#composer-text", XSS);
  await alice.click("#send");
  await alice.fill("#composer-text", IMG);
  await alice.click("#send");
  await bob.waitForSelector('#messages li[data-seq="4"]', WAIT);
  await alice.waitForSelector('#messages li[data-seq="4"]', WAIT);
  report.bobTexts = await messageTexts(bob);
  report.aliceTexts = await messageTexts(alice);
  report.xss = {};
  for (const [user, page] of [["alice", alice], ["bob", bob]]) {
    report.xss[user] = {
      scriptsInMessages: await page.$$eval("#messages script", (els) => els.length),
      imgsInMessages: await page.$$eval("#messages img", (els) => els.length),
      scriptsInDocument: await page.$$eval("script", (els) => els.length),
      xssHtml: await page.$eval('#messages li[data-seq="3"] .text', (e) => e.innerHTML),
    };
  }
  report.scriptsBefore = scriptsBefore;

  await bob.click("#bell");
  await bob.waitForSelector("#notifications li.unread", WAIT);
  report.bobNotifications = await bob.$$eval("#notifications li", (els) =>
    els.map((e) => ({
      title: e.querySelector(".title")?.textContent,
      body: e.querySelector(".body")?.textContent,
      unread: e.classList.contains("unread"),
    })),
  );
  if (shotDir) {
    await alice.screenshot({ path: `${shotDir}/alice.png` });
    await bob.screenshot({ path: `${shotDir}/bob.png` });
  }
  await bob.click("#mark-all-read");
  await bob.waitForFunction(() => document.querySelector("#unread-count").textContent === "0", null, WAIT);
  report.bobUnreadAfterMarkRead = await bob.textContent("#unread-count");
  await bob.click("#bell");

  // a dropped connection: bob reconnects by himself and misses nothing
  await bob.evaluate(() => window.switchboardDemo.client.dropConnection());
  await alice.fill("#composer-text", "sent while bob reconnects");
  await alice.click("#send");
  await alice.fill("#composer-text", "and one more");
  await alice.click("#send");
  await bob.waitForSelector('#messages li[data-seq="6"]', WAIT);
  await bob.waitForSelector('#state[data-state="connected"]', WAIT);
  await bob.waitForTimeout(300);
  report.bobStates = await bob.evaluate(() => window.switchboardDemo.client.stateHistory);
  report.bobMetrics = await bob.evaluate(() => window.switchboardDemo.client.metrics);
  report.bobSeqsAfterReconnect = await messageSeqs(bob);
  report.bobTextsAfterReconnect = await messageTexts(bob);
  if (shotDir) await bob.screenshot({ path: `${shotDir}/bob-after-reconnect.png` });
} catch (err) {
  report.errors.push(String(err && err.stack ? err.stack : err));
} finally {
  if (browser) await browser.close().catch(() => {});
}
clearTimeout(killer);
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
