// The follow and control pages with live data (SPEC C16, W3), served by the
// `live_demo` example: a scripted room whose callers talk in turn. It covers
// what real phones make slow or awkward to set up (a host, a socket dropped
// and resumed); live_sip.test.mjs runs the same pages on the real server
// with baresip participants.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, SHOTS, startServer, launchBrowser } from "./harness.mjs";

let server, chrome;

// Waits until element #id reads exactly `text` (`:has-text` matches
// substrings, and "unlocked" contains "locked").
async function waitText(page, id, text) {
  await page.waitForFunction(
    ([i, t]) => document.getElementById(i).textContent === t, [id, text], { timeout: 10000 });
}

before(async () => {
  server = await startServer([join(ROOT, "target/debug/examples/live_demo"), "TMP/data", "READY"]);
  chrome = await launchBrowser();
});

after(async () => {
  if (chrome) await chrome.close();
  if (server) await server.stop();
});

test("C16 W3: follow page shows who is in and who talks, live", async () => {
  const context = await chrome.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(server.info.follow_url);
  await page.waitForSelector("#conn:has-text('live')");
  await page.waitForSelector("#participants tr[data-participant='3']");
  const rows = await page.locator("#participants tr").allTextContents();
  assert.equal(rows.length, 3);
  assert.match(rows[0], /1001.*Alice Martin.*host/);
  assert.match(rows[2], /Chiara Rossi.*muted/);
  // The talking indicator lights and goes out without a reload.
  await page.waitForSelector("tr.talking[data-participant='1']", { timeout: 5000 });
  await page.waitForSelector("tr.talking[data-participant='2']", { timeout: 5000 });
  await page.waitForSelector("tr:not(.talking)[data-participant='1']", { timeout: 5000 });
  assert.equal(await page.textContent("#state-active"), "in progress");
  await page.waitForSelector("tr.talking");
  await page.screenshot({ path: join(SHOTS, "follow-page.png"), fullPage: true });
  await context.close();
});

test("C16: control page mutes, deafens, kicks, locks and records", async () => {
  const context = await chrome.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(server.info.control_url);
  await page.waitForSelector("#conn:has-text('live')");
  const bruno = "#participants tr[data-participant='2']";
  await page.click(`${bruno} button:has-text('Mute')`);
  await page.waitForSelector(`${bruno} .badge:has-text('muted')`);
  await page.click(`${bruno} button:has-text('Deafen')`);
  await page.waitForSelector(`${bruno} .badge:has-text('deaf')`);
  await page.click("#lock");
  await waitText(page, "state-locked", "locked");
  assert.equal(await page.textContent("#lock"), "Unlock room");
  await page.click("#record");
  await waitText(page, "state-recording", "recording");
  // A second page (follow) sees the same changes: they are room events.
  const follow = await context.newPage();
  await follow.goto(server.info.follow_url);
  await follow.waitForSelector(`${bruno} .badge:has-text('deaf')`);
  await waitText(follow, "state-locked", "locked");
  await page.waitForSelector("tr.talking");
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(SHOTS, "control-page.png"), fullPage: true });
  await page.click(`#participants tr[data-participant='3'] button:has-text('Kick')`);
  await page.waitForSelector("#participants tr[data-participant='3']", { state: "detached" });
  await follow.waitForSelector("#participants tr[data-participant='3']", { state: "detached" });

  // Reconnect resumes without a reload: drop the socket, events keep coming.
  await page.evaluate(() => window.__palaverDropSocket && window.__palaverDropSocket());
  await page.click(`${bruno} button:has-text('Unmute')`);
  await page.waitForSelector(`${bruno}:not(:has(.badge:has-text('muted')))`);
  await context.close();
});
