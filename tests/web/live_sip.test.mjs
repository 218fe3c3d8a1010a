// The follow and control pages with real SIP participants (SPEC C16, W3,
// C1): the real `palaver serve` binary, three baresip phones calling a room
// created in the panel, each sending its own tone. What the pages show is
// checked in headless Chromium; what mute and deafen do is checked on the
// audio the phones received (Goertzel), not on the badges alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, SHOTS, startServer, launchBrowser } from "./harness.mjs";
import { Baresip, haveBaresip, toneWav, toneAmplitude, rms } from "./sip.mjs";

const skip = haveBaresip() ? false : "baresip is not installed";

// Tones of 8000 peak arrive at roughly that amplitude through G.711 and the
// mixer; "heard" and "not heard" are far apart on either side.
const HEARD = 2000;
const NOT_HEARD = 150;
// Audio to let through after a command before checking its effect: the
// phones' jitter and audio buffers are well under this.
const SETTLE_S = 0.5;
const WINDOW_S = 2;

const PHONES = [
  // Talks all the time.
  { user: "2001", name: "Alice Martin", freq: 440, segments: [{ freq: 440, seconds: 180 }] },
  { user: "2002", name: "Bruno Keller", freq: 700, segments: [{ freq: 700, seconds: 180 }] },
  // Silent, then loud, then silent again, then loud: its talking indicator
  // must go on and off by itself. The first silence outlasts the greeting
  // (~1.5 s) and the join beep.
  {
    user: "2003", name: "Chiara Rossi", freq: 1100,
    segments: [
      { freq: 0, seconds: 7 }, { freq: 1100, seconds: 5 },
      { freq: 0, seconds: 5 }, { freq: 1100, seconds: 160 },
    ],
  },
];

let server, chrome, phones = [];

before(async () => {
  if (skip) return;
  server = await startServer(
    [join(ROOT, "target/debug/palaver"), "serve", "--demo", "--demo-password", "live-sip-pw",
     "--data-dir", "TMP/data", "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
     "--ready-file", "READY"],
    { PALAVER_ADMIN_PASSWORD: "live-sip-test-pw" },
  );
  chrome = await launchBrowser();
});

after(async () => {
  for (const p of phones) await p.stop();
  if (chrome) await chrome.close();
  if (server) await server.stop();
});

// Waits for `check()` to return a truthy value, polling; throws with
// `what` (and the last value) after `timeout` ms.
async function until(what, check, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// What `listener` receives over the next WINDOW_S seconds, starting
// SETTLE_S after now: for each phone's tone, `heard` (the median amplitude
// of its 200 ms blocks, so a short network hiccup cannot hide a tone that
// is there) and `leak` (its amplitude over the whole window, which a
// glitch cannot push far from 0 when the tone is absent).
async function heardBy(listener) {
  const from = listener.phone.receivedLength();
  const { samples, rate } = await listener.phone.receivedAfter(from + SETTLE_S * 8000, WINDOW_S);
  const block = rate / 5;
  const result = { rms: Math.round(rms(samples)) };
  for (const p of PHONES) {
    const blocks = [];
    for (let i = 0; i + block <= samples.length; i += block) {
      blocks.push(toneAmplitude(samples.subarray(i, i + block), rate, p.freq));
    }
    blocks.sort((a, b) => a - b);
    result[p.user] = {
      heard: Math.round(blocks[blocks.length >> 1]),
      leak: Math.round(toneAmplitude(samples, rate, p.freq)),
    };
  }
  return result;
}

const row = (id) => `#participants tr[data-participant='${id}']`;

test("C16 W3 C1: live pages follow real SIP participants; mute and deafen act on their audio", { skip, timeout: 150_000 }, async (t) => {
  const base = `http://${server.info.http}`;
  const sip = server.info.sip_udp;
  const context = await chrome.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const admin = await context.newPage();

  // Log in, create a room, route a public number of the demo trunk to it,
  // generate its URLs.
  await admin.goto(`${base}/login`);
  await admin.fill("#username", "admin");
  await admin.fill("#password", "live-sip-test-pw");
  await admin.click("button[type=submit]");
  await admin.waitForURL(`${base}/rooms`);
  await admin.click("text=New room");
  await admin.fill("#name", "Weekly sync");
  await admin.fill("#extension", "820");
  await admin.check("input[name=recording_enabled]");
  await admin.click("button:has-text('Create room')");
  await admin.waitForURL(/\/rooms\/\d+\?notice=created$/);
  const roomUrl = admin.url().replace(/\?.*$/, "");
  await admin.click("text=Route a public number here");
  await admin.fill("#number", "5550820");
  await admin.selectOption("#trunk_id", { label: "local" });
  assert.match(await admin.inputValue("#destination"), /^room:\d+$/);
  await admin.click("button:has-text('Add number')");
  await admin.waitForURL(/\/numbers\?notice=created$/);
  await admin.goto(roomUrl);
  await admin.click("button:has-text('Generate URLs')");
  const followUrl = await admin.inputValue("#follow-url");
  const controlUrl = await admin.inputValue("#control-url");

  const follow = await context.newPage();
  await follow.goto(followUrl);
  await follow.waitForSelector("#conn:has-text('live')");
  const control = await context.newPage();
  await control.goto(controlUrl);
  await control.waitForSelector("#conn:has-text('live')");

  // Every change of anyone's talking indicator on the follow page, as the
  // page draws it (it redraws the table on each event).
  await follow.evaluate(() => {
    window.__talk = [];
    const seen = new Map();
    const look = () => {
      document.querySelectorAll("#participants tr").forEach((tr) => {
        const number = tr.children[1].textContent;
        const on = tr.classList.contains("talking");
        if (seen.get(number) !== on) {
          seen.set(number, on);
          window.__talk.push({ number, on });
        }
      });
    };
    new MutationObserver(look).observe(document.getElementById("participants"), { childList: true });
  });
  const talkLog = (number) => follow.evaluate((n) => window.__talk.filter((e) => e.number === n).map((e) => e.on), number);

  // The phones dial in one by one; each appears with its number and name.
  const ids = {};
  for (const spec of PHONES) {
    const wav = join(server.dir, `tone-${spec.user}.wav`);
    toneWav(wav, spec.segments);
    const phone = await Baresip.start(server.dir, { user: spec.user, name: spec.name, server: sip, audio: wav });
    phones.push(phone);
    spec.phone = phone;
    await phone.dial("5550820");
    const tr = await follow.waitForSelector(`#participants tr:has(td:text-is('${spec.user}'))`, { timeout: 15_000 });
    ids[spec.user] = await tr.getAttribute("data-participant");
    assert.match(await tr.textContent(), new RegExp(`${spec.user}.*${spec.name}.*participant`));
  }
  const [alice, bruno, chiara] = PHONES;
  assert.equal(await follow.locator("#participants tr").count(), 3);
  assert.equal(await follow.textContent("#state-active"), "in progress");

  // Alice and Bruno send their tones continuously: their indicators light.
  await follow.waitForSelector(`${row(ids[alice.user])}.talking`, { timeout: 10_000 });
  await follow.waitForSelector(`${row(ids[bruno.user])}.talking`, { timeout: 10_000 });

  // Before any command everyone hears the two others and not themselves.
  const aliceHears = await heardBy(alice);
  t.diagnostic(`tone amplitudes heard: ${JSON.stringify({ aliceHears })}`);
  assert.ok(aliceHears[bruno.user].heard > HEARD, `Alice does not hear Bruno: ${JSON.stringify(aliceHears)}`);
  assert.ok(aliceHears[alice.user].leak < NOT_HEARD, `Alice hears herself: ${JSON.stringify(aliceHears)}`);

  // Mute Bruno from the control page: both pages show it, and his tone no
  // longer reaches Alice or Chiara, while Alice's still reaches Chiara.
  await control.click(`${row(ids[bruno.user])} button:has-text('Mute')`);
  await follow.waitForSelector(`${row(ids[bruno.user])} .badge:text-is('muted')`);
  await control.waitForSelector(`${row(ids[bruno.user])} button:text-is('Unmute')`);
  const [aMuted, cMuted] = await Promise.all([heardBy(alice), heardBy(chiara)]);
  t.diagnostic(`tone amplitudes heard: ${JSON.stringify({ aMuted, cMuted })}`);
  assert.ok(aMuted[bruno.user].leak < NOT_HEARD, `Alice still hears muted Bruno: ${JSON.stringify(aMuted)}`);
  assert.ok(cMuted[bruno.user].leak < NOT_HEARD, `Chiara still hears muted Bruno: ${JSON.stringify(cMuted)}`);
  assert.ok(cMuted[alice.user].heard > HEARD, `Chiara no longer hears Alice: ${JSON.stringify(cMuted)}`);
  // A muted participant is not shown talking, though he still sends.
  await follow.waitForSelector(`${row(ids[bruno.user])}:not(.talking)`, { timeout: 10_000 });

  // The screenshots show a live room: who talks, who is muted.
  await follow.waitForSelector(`${row(ids[alice.user])}.talking`);
  await control.mouse.move(0, 0);
  await follow.screenshot({ path: join(SHOTS, "follow-live.png"), fullPage: true });
  await control.screenshot({ path: join(SHOTS, "control-live.png"), fullPage: true });

  // Unmute: his tone is back for both.
  await control.click(`${row(ids[bruno.user])} button:has-text('Unmute')`);
  await follow.waitForSelector(`${row(ids[bruno.user])}:not(:has(.badge:text-is('muted')))`);
  const [aBack, cBack] = await Promise.all([heardBy(alice), heardBy(chiara)]);
  t.diagnostic(`tone amplitudes heard: ${JSON.stringify({ aBack, cBack })}`);
  assert.ok(aBack[bruno.user].heard > HEARD, `Alice does not hear Bruno after unmute: ${JSON.stringify(aBack)}`);
  assert.ok(cBack[bruno.user].heard > HEARD, `Chiara does not hear Bruno after unmute: ${JSON.stringify(cBack)}`);

  // Deafen Alice: she hears nobody; the others still hear her.
  await control.click(`${row(ids[alice.user])} button:has-text('Deafen')`);
  await follow.waitForSelector(`${row(ids[alice.user])} .badge:text-is('deaf')`);
  const [aDeaf, bDeaf] = await Promise.all([heardBy(alice), heardBy(bruno)]);
  t.diagnostic(`tone amplitudes heard: ${JSON.stringify({ aDeaf, bDeaf })}`);
  assert.ok(aDeaf[bruno.user].leak < NOT_HEARD && aDeaf.rms < NOT_HEARD, `deaf Alice still hears the room: ${JSON.stringify(aDeaf)}`);
  assert.ok(bDeaf[alice.user].heard > HEARD, `Bruno no longer hears deaf Alice: ${JSON.stringify(bDeaf)}`);
  await control.click(`${row(ids[alice.user])} button:has-text('Undeafen')`);
  await follow.waitForSelector(`${row(ids[alice.user])}:not(:has(.badge:text-is('deaf')))`);
  const aHearing = await heardBy(alice);
  t.diagnostic(`tone amplitudes heard: ${JSON.stringify({ aHearing })}`);
  assert.ok(aHearing[bruno.user].heard > HEARD, `Alice does not hear Bruno after undeafen: ${JSON.stringify(aHearing)}`);

  // Chiara's indicator went on when her tone started and off when it
  // paused, without a reload.
  await until("Chiara's indicator to go on and off", async () => {
    const log = await talkLog(chiara.user);
    return log.length >= 3 && log[0] === false && log.includes(true) && log.lastIndexOf(false) > log.indexOf(true);
  }, 30_000);

  // Regenerate the URLs: the open pages learn that their links are dead,
  // and then show nothing new; the old URLs answer 404, the new ones work.
  admin.once("dialog", (d) => d.accept());
  await admin.click("button:has-text('Regenerate URLs')");
  await admin.waitForFunction((old) => document.getElementById("follow-url")?.value !== old, followUrl);
  const newFollowUrl = await admin.inputValue("#follow-url");
  await follow.waitForSelector("#revoked:not([hidden])");
  await control.waitForSelector("#revoked:not([hidden])");
  const frozen = await follow.innerHTML("#participants");
  const fresh = await context.newPage();
  await fresh.goto(newFollowUrl);
  await fresh.waitForSelector("#conn:has-text('live')");
  await fresh.waitForSelector(row(ids[alice.user]));
  // Something happens in the room: Alice hangs up. The new page shows it;
  // the old one does not.
  alice.phone.hangup();
  await alice.phone.waitEvent("CALL_CLOSED");
  await fresh.waitForSelector(row(ids[alice.user]), { state: "detached" });
  assert.equal(await follow.innerHTML("#participants"), frozen, "the old page changed after it was revoked");
  assert.equal(await follow.locator(row(ids[alice.user])).count(), 1);
  assert.equal((await context.request.get(followUrl)).status(), 404);
  assert.equal((await context.request.get(controlUrl)).status(), 404);
  assert.equal((await context.request.get(newFollowUrl)).status(), 200);

  // The new control URL steers the same room: lock, record, kick.
  const newControl = await context.newPage();
  await newControl.goto(await admin.inputValue("#control-url"));
  await newControl.waitForSelector("#conn:has-text('live')");
  await newControl.click("#lock");
  await fresh.waitForSelector("#state-locked:text-is('locked')");
  await newControl.click("#lock");
  await fresh.waitForSelector("#state-locked:text-is('unlocked')");
  await newControl.click("#record");
  await fresh.waitForSelector("#state-recording:text-is('recording')");
  await newControl.click("#record");
  await fresh.waitForSelector("#state-recording:text-is('not recording')");
  await newControl.click(`${row(ids[chiara.user])} button:has-text('Kick')`);
  await chiara.phone.waitEvent("CALL_CLOSED");
  await fresh.waitForSelector(row(ids[chiara.user]), { state: "detached" });
  assert.equal(await newControl.textContent("#command-error"), "");

  bruno.phone.hangup();
  await fresh.waitForSelector("#state-active:text-is('idle')", { timeout: 15_000 });
  assert.equal(await fresh.locator("#participants tr").count(), 0);
  await context.close();
});
