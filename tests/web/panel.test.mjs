// The control panel in a real browser against the real `palaver serve`
// binary (SPEC W1, C1–C15, C16, C17, C8): log in, create a room with every
// setting, see a validation error and the no-PIN warning, generate the
// follow/control URLs, upload a file, regenerate and see the old page die.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, SHOTS, startServer, launchBrowser, wav } from "./harness.mjs";

let server, chrome, base;

before(async () => {
  server = await startServer(
    [join(ROOT, "target/debug/palaver"), "serve", "--data-dir", "TMP/data",
     "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--ready-file", "READY"],
    { PALAVER_ADMIN_PASSWORD: "browser-test-pw" },
  );
  base = `http://${server.info.http}`;
  chrome = await launchBrowser();
});

after(async () => {
  if (chrome) await chrome.close();
  if (server) await server.stop();
});

test("W1 C1-C17 C16 C8: panel from login to live URLs", async () => {
  const context = await chrome.browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();

  // Login: a wrong password is refused, the right one lands on the rooms list.
  await page.goto(`${base}/rooms`);
  assert.match(page.url(), /\/login\?next=\/rooms$/);
  await page.fill("#username", "admin");
  await page.fill("#password", "wrong");
  await page.click("button[type=submit]");
  assert.equal(await page.textContent("#login-error"), "wrong user name or password");
  await page.fill("#password", "browser-test-pw");
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/rooms`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "palaver_session");
  assert.ok(session.httpOnly);
  assert.equal(session.sameSite, "Strict");

  // New room with every setting; first with a bad participant limit.
  await page.click("text=New room");
  await page.fill("#name", "Board meeting");
  await page.fill("#extension", "810");
  await page.fill("#access_pin", "");
  await page.fill("#host_pin", "4321");
  await page.fill("#max_participants", "5000");
  await page.selectOption("#language", "fr");
  for (const box of ["wait_for_host", "mute_on_entry", "announce_join_leave", "recording_enabled", "recording_autostart"]) {
    await page.check(`input[name=${box}]`);
  }
  await page.uncheck("input[name=allow_anonymous]");
  await page.fill("#report_email", "ops@example.org");
  await page.click("button:has-text('Create room')");
  assert.equal(await page.textContent("#max_participants-error"), "must be between 2 and 1000");
  assert.equal(await page.inputValue("#name"), "Board meeting", "typed values are kept");
  await page.screenshot({ path: join(SHOTS, "rooms-editor-validation.png"), fullPage: true });
  await page.fill("#max_participants", "40");
  await page.click("button:has-text('Create room')");
  await page.waitForURL(/\/rooms\/\d+\?notice=created$/);
  const roomUrl = page.url().replace(/\?.*$/, "");

  // Everything was kept, and the room without PIN carries the C17 warning.
  assert.equal(await page.inputValue("#max_participants"), "40");
  assert.equal(await page.inputValue("#language"), "fr");
  assert.ok(await page.isChecked("input[name=wait_for_host]"));
  assert.ok(!(await page.isChecked("input[name=allow_anonymous]")));
  assert.equal(await page.inputValue("#report_email"), "ops@example.org");
  assert.match(await page.textContent("#no-pin-warning"), /No PIN: anyone who knows the number can join\./);

  // Upload: a good WAV, then a file that is not audio.
  const good = join(server.dir, "greeting.wav");
  writeFileSync(good, wav());
  const bad = join(server.dir, "notes.txt");
  writeFileSync(bad, "these are not sounds");
  const musicForm = "form[action$='/uploads/music']";
  await page.setInputFiles(`${musicForm} input[type=file]`, good);
  await page.click(`${musicForm} button`);
  await page.waitForURL(/notice=uploaded/);
  assert.match(await page.textContent("#uploads"), /Current: room\d+-music-[0-9a-f]{8}\.wav/);
  await page.setInputFiles(`form[action$='/uploads/announcement'] input[type=file]`, bad);
  await page.click(`form[action$='/uploads/announcement'] button`);
  assert.equal(await page.textContent(".upload-error"), "Not uploaded: this is not a WAV, MP3, OGG Vorbis or FLAC file.");

  // C16: generate the URLs and open the follow page; it connects live.
  await page.goto(roomUrl);
  await page.click("button:has-text('Generate URLs')");
  const followUrl = await page.inputValue("#follow-url");
  const controlUrl = await page.inputValue("#control-url");
  assert.match(followUrl, /\/follow\/[0-9a-f]{32}$/);
  assert.match(controlUrl, /\/control\/[0-9a-f]{32}$/);
  await page.screenshot({ path: join(SHOTS, "rooms-editor.png"), fullPage: true });

  const follow = await context.newPage();
  await follow.goto(followUrl);
  await follow.waitForSelector("#conn:has-text('live')");
  assert.equal(await follow.textContent("h1"), "Board meeting");
  assert.equal(await follow.locator("#lock").count(), 0, "no controls on the follow page");
  const control = await context.newPage();
  await control.goto(controlUrl);
  await control.waitForSelector("#conn:has-text('live')");
  assert.equal(await control.locator("#lock").count(), 1);

  // Regenerate: the open follow page learns at once that its link is dead,
  // and the old URL answers 404.
  page.once("dialog", (d) => d.accept());
  await page.click("button:has-text('Regenerate URLs')");
  await page.waitForSelector("#follow-url");
  assert.notEqual(await page.inputValue("#follow-url"), followUrl);
  await follow.waitForSelector("#revoked:not([hidden])");
  assert.equal(await follow.textContent("#conn"), "link revoked");
  await control.waitForSelector("#revoked:not([hidden])");
  const old = await context.request.get(followUrl);
  assert.equal(old.status(), 404);

  // The rooms list shows the room and its missing PIN.
  await page.goto(`${base}/rooms`);
  assert.match(await page.textContent("table.list"), /Board meeting[\s\S]*810[\s\S]*No PIN/);
  await page.screenshot({ path: join(SHOTS, "rooms-list.png"), fullPage: true });
  await context.close();
});
