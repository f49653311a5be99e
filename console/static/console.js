// Anxin console: live updates over server-sent events, ages that tick, acknowledge/resolve
// without leaving the page, and a sound and title change for a new critical alert.
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const lang = body.dataset.lang;
  const T = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  if (!csrfMeta) return; // login page: nothing live
  const csrf = csrfMeta.content;
  const baseTitle = document.title;
  window.anxin = { beeps: 0, alarms: 0, updates: 0 };

  // -- ages ------------------------------------------------------------------------------------
  let rendered = Date.now();
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const zh = lang === "zh-CN";
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 60) return zh ? s + "秒" : s + " s";
    if (s < 3600) return zh ? Math.floor(s / 60) + "分" + pad(s % 60) + "秒" : Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    if (s < 86400) return zh ? Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分" : Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return zh ? Math.floor(s / 86400) + "天" + Math.floor((s % 86400) / 3600) + "小时" : Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function tick() {
    const dt = (Date.now() - rendered) / 1000;
    document.querySelectorAll("[data-age]").forEach((el) => {
      el.textContent = duration(Number(el.dataset.age) + dt);
    });
  }
  setInterval(tick, 1000);

  // -- sound and title -------------------------------------------------------------------------
  let audio = null;
  function ensureAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  }
  function beep() {
    ensureAudio();
    if (!audio) return;
    const t0 = audio.currentTime;
    [0, 0.35, 0.7].forEach((off) => {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.0001, t0 + off);
      g.gain.exponentialRampToValueAtTime(0.3, t0 + off + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t0 + off + 0.25);
      o.connect(g).connect(audio.destination);
      o.start(t0 + off);
      o.stop(t0 + off + 0.3);
    });
    window.anxin.beeps++;
  }
  let alarmOn = false;
  function alarm() {
    window.anxin.alarms++;
    beep();
    alarmOn = true;
    document.title = "(!) " + T.new_critical + " · " + baseTitle;
  }
  function quiet() {
    if (alarmOn) { alarmOn = false; document.title = baseTitle; }
  }
  document.addEventListener("click", () => { ensureAudio(); quiet(); });
  document.addEventListener("keydown", quiet);
  const soundBtn = document.getElementById("sound");
  if (soundBtn) soundBtn.addEventListener("click", () => { ensureAudio(); beep(); });

  // -- refreshing parts of the page ------------------------------------------------------------
  function keepNotes(container) {
    const notes = {};
    let focused = null;
    container.querySelectorAll("input.note").forEach((el) => {
      if (el.value) notes[el.dataset.note] = el.value;
      if (el === document.activeElement) focused = el.dataset.note;
    });
    return { notes, focused };
  }
  function restoreNotes(container, kept) {
    container.querySelectorAll("input.note").forEach((el) => {
      if (kept.notes[el.dataset.note]) el.value = kept.notes[el.dataset.note];
      if (kept.focused === el.dataset.note) el.focus();
    });
  }
  async function swap(url, id, fresh, since) {
    const old = document.getElementById(id);
    if (!old) return;
    const resp = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (resp.status === 403) { location.href = "/login"; return; }
    if (!resp.ok) return;
    const html = await resp.text();
    const box = document.createElement("div");
    box.innerHTML = html;
    const neu = box.querySelector("#" + id);
    if (!neu) return;
    const kept = keepNotes(old);
    const before = new Set(Array.from(old.querySelectorAll("[data-alert]")).map((e) => e.dataset.alert));
    old.replaceWith(neu);
    restoreNotes(neu, kept);
    rendered = Date.now();
    (fresh || []).forEach((aid) => {
      const el = neu.querySelector('article[data-alert="' + aid + '"]');
      if (el && !before.has(aid)) el.classList.add("fresh");
    });
    const count = document.getElementById("count");
    if (count && neu.dataset.count !== undefined) count.textContent = neu.dataset.count;
    bindForms(neu);
    window.anxin.updates++;
    if (since) window.anxin.lastLatencyMs = Math.round(performance.now() - since);
  }
  let pending = null;
  let freshIds = [];
  let firstEventAt = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      const ids = freshIds;
      const since = firstEventAt;
      freshIds = [];
      firstEventAt = null;
      if (page === "board") {
        await swap("/board/rows", "rows", ids, since);
        await swap("/board/suspicions", "suspicions");
      }
      else if (page === "alert") await swap("/alerts/" + encodeURIComponent(body.dataset.alert) + "/live", "alert-live");
    }, 30);
  }
  // Positions and ages from the store change without alert events: a quiet refresh now and then.
  if (page === "board") setInterval(refresh, 15000);

  // -- acknowledge / resolve -------------------------------------------------------------------
  function bindForms(root) {
    root.querySelectorAll("form.act").forEach((form) => {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const button = ev.submitter;
        const url = (button && button.getAttribute("formaction")) || form.getAttribute("action");
        const msg = form.querySelector(".msg");
        const data = new FormData(form);
        form.querySelectorAll("button").forEach((b) => (b.disabled = true));
        try {
          const resp = await fetch(url, {
            method: "POST", body: data, credentials: "same-origin",
            headers: { Accept: "application/json", "X-CSRF-Token": csrf },
          });
          if (resp.status === 403) { msg.textContent = T.forbidden; return; }
          const out = await resp.json();
          const text = out.message;
          // Keep the answer visible across the refresh that the event triggers.
          sessionStorage.setItem("msg:" + form.dataset.alert, JSON.stringify([Date.now(), text]));
          msg.textContent = text;
        } catch (e) {
          msg.textContent = String(e);
        } finally {
          form.querySelectorAll("button").forEach((b) => (b.disabled = false));
          refresh();
        }
      });
      try {
        const kept = JSON.parse(sessionStorage.getItem("msg:" + form.dataset.alert) || "null");
        if (kept && Date.now() - kept[0] < 120000) form.querySelector(".msg").textContent = kept[1];
      } catch (e) { /* nothing kept */ }
    });
  }
  bindForms(document);

  // -- the live stream -------------------------------------------------------------------------
  const live = document.getElementById("live");
  if (page === "board" || page === "alert") {
    const es = new EventSource("/events");
    es.onopen = () => { if (live) { live.hidden = false; live.classList.remove("down"); live.textContent = "● " + T.live; } };
    es.onerror = () => { if (live) { live.classList.add("down"); live.textContent = "● " + T.offline_stream; } };
    es.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      if (e.event === "suspicions") { if (page === "board") refresh(); return; }
      const rises = e.event === "opened" || e.event === "severity_raised" || e.event === "reopened";
      if (rises && e.severity === "critical") alarm();
      if (firstEventAt === null) firstEventAt = performance.now();
      if (page === "board") {
        if (e.event === "opened") freshIds.push(e.alert_id);
        refresh();
      } else if (page === "alert" && e.alert_id === body.dataset.alert) {
        refresh();
      }
    };
  }
})();
