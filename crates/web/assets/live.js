// Live follow/control page (SPEC C16, W3). Plain script, no framework.
// Protocol (see crates/web/src/follow.rs): the socket sends a snapshot, then
// events numbered 1, 2, 3…; on reconnect we ask for the events after the last
// one we applied (?after=N), so the page never reloads. A gap in the numbers
// means we missed something: reconnect without ?after for a fresh snapshot.
(function () {
  "use strict";
  var root = document.getElementById("live");
  var wsPath = root.dataset.ws;
  var commandsUrl = root.dataset.commands;
  var control = root.dataset.control === "true";
  var state = { seq: 0, active: false, locked: false, recording: false, people: new Map() };
  var haveState = false, retry = 0, sock = null, dead = false;
  var delays = [0, 500, 1000, 2000, 5000, 10000];

  function $(id) { return document.getElementById(id); }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + wsPath + (haveState ? "?after=" + state.seq : "");
    sock = new WebSocket(url);
    sock.onopen = function () { retry = 0; badge("conn", "live", "ok"); };
    sock.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      if (dead) return;
      badge("conn", "reconnecting…", "off");
      if (ev.code === 4001) { revoked(); return; }
      // Closed without a reason: the URL may have been revoked while we were
      // away (the socket then cannot open). Ask the page itself.
      fetch(location.pathname, { method: "HEAD", cache: "no-store" }).then(function (r) {
        if (r.status === 404) revoked(); else schedule();
      }, schedule);
    };
  }

  function schedule() {
    retry = Math.min(retry + 1, delays.length - 1);
    setTimeout(connect, delays[retry]);
  }

  function handle(msg) {
    if (msg.type === "snapshot") {
      var s = msg.snapshot;
      state.seq = s.seq; state.active = s.active; state.locked = s.locked; state.recording = s.recording;
      state.people = new Map();
      s.participants.forEach(function (p) { state.people.set(p.id, p); });
      haveState = true;
      render();
    } else if (msg.type === "event") {
      if (msg.seq <= state.seq) return;
      if (msg.seq !== state.seq + 1) { haveState = false; sock.close(); return; }
      apply(msg.event);
      state.seq = msg.seq;
      render();
    } else if (msg.type === "revoked") {
      revoked();
    }
  }

  function apply(e) {
    var p = e.participant !== undefined ? state.people.get(e.participant) : null;
    switch (e.type) {
      case "room.started": state.active = true; break;
      case "room.ended": state.active = false; state.recording = false; state.people = new Map(); break;
      case "participant.joined": state.active = true; state.people.set(e.participant.id, e.participant); break;
      case "participant.left": state.people.delete(e.participant); break;
      case "participant.talking": if (p) p.talking = true; break;
      case "participant.stopped_talking": if (p) p.talking = false; break;
      case "participant.muted": if (p) p.muted = true; break;
      case "participant.unmuted": if (p) p.muted = false; break;
      case "participant.deaf": if (p) p.deaf = true; break;
      case "participant.undeaf": if (p) p.deaf = false; break;
      case "participant.waiting": if (p) p.waiting = true; break;
      case "participant.admitted": if (p) p.waiting = false; break;
      case "room.locked": state.locked = true; break;
      case "room.unlocked": state.locked = false; break;
      case "room.recording_started": state.recording = true; break;
      case "room.recording_stopped": state.recording = false; break;
    }
  }

  function badge(id, text, cls) {
    var b = $(id);
    b.textContent = text;
    b.className = "badge " + cls;
  }

  function since(ms) {
    var d = new Date(ms);
    var mins = Math.max(0, Math.floor((Date.now() - ms) / 60000));
    var ago = mins < 1 ? "just now" : mins < 60 ? mins + " min" : Math.floor(mins / 60) + " h " + (mins % 60) + " min";
    return d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }) + " (" + ago + ")";
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function button(td, label, command) {
    var b = document.createElement("button");
    b.type = "button"; b.className = "small"; b.textContent = label;
    b.addEventListener("click", function () { send(command); });
    td.appendChild(b);
  }

  function render() {
    badge("state-active", state.active ? "in progress" : "idle", state.active ? "on" : "off");
    badge("state-locked", state.locked ? "locked" : "unlocked", state.locked ? "warn" : "off");
    badge("state-recording", state.recording ? "recording" : "not recording", state.recording ? "alert" : "off");
    var body = $("participants");
    body.textContent = "";
    state.people.forEach(function (p) {
      var tr = document.createElement("tr");
      tr.dataset.participant = p.id;
      if (p.talking) tr.className = "talking";
      var talk = cell(tr, undefined, "talk");
      var dot = document.createElement("span");
      dot.className = "dot"; dot.title = p.talking ? "talking" : "silent";
      talk.appendChild(dot);
      cell(tr, p.number || "withheld");
      cell(tr, p.name || "—");
      var role = cell(tr);
      if (p.host) {
        var h = document.createElement("span");
        h.className = "badge on"; h.textContent = "host";
        role.appendChild(h);
      } else {
        role.textContent = "participant";
      }
      cell(tr, since(p.joined_at));
      var audio = cell(tr, undefined, "audio");
      [[p.waiting, "waiting for host", "off"], [p.muted, "muted", "warn"], [p.deaf, "deaf", "warn"], [p.talking, "talking", "ok"]].forEach(function (f) {
        if (!f[0]) return;
        var s = document.createElement("span");
        s.className = "badge " + f[2]; s.textContent = f[1];
        audio.appendChild(s); audio.appendChild(document.createTextNode(" "));
      });
      if (control) {
        var acts = cell(tr, undefined, "acts");
        button(acts, p.muted ? "Unmute" : "Mute", { action: p.muted ? "unmute" : "mute", participant: p.id });
        button(acts, p.deaf ? "Undeafen" : "Deafen", { action: p.deaf ? "undeafen" : "deafen", participant: p.id });
        button(acts, "Kick", { action: "kick", participant: p.id });
      }
      body.appendChild(tr);
    });
    $("empty").hidden = state.people.size > 0;
    if (control) {
      $("lock").textContent = state.locked ? "Unlock room" : "Lock room";
      var rec = $("record");
      rec.textContent = state.recording ? "Stop recording" : "Start recording";
    }
  }

  function send(command) {
    $("command-error").textContent = "";
    fetch(commandsUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(command)
    }).then(function (r) {
      if (r.ok) return;
      if (r.status === 404) { revoked(); return; }
      return r.json().then(function (b) { $("command-error").textContent = b.error; });
    }, function () { $("command-error").textContent = "Not sent: the server cannot be reached."; });
  }

  function revoked() {
    dead = true;
    if (sock) sock.close();
    badge("conn", "link revoked", "alert");
    $("revoked").hidden = false;
    root.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
  }

  if (control) {
    $("lock").addEventListener("click", function () { send({ action: state.locked ? "unlock" : "lock" }); });
    $("record").addEventListener("click", function () {
      send({ action: state.recording ? "stop_recording" : "start_recording" });
    });
  }
  // Lets the browser tests drop the socket to check that a reconnect resumes.
  window.__palaverDropSocket = function () { if (sock) sock.close(); };
  // Keep the "(n min)" figures fresh without events.
  setInterval(function () { if (!dead && state.people.size) render(); }, 30000);
  connect();
})();
