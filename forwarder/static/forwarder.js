/*! forwarder.js: first-party events for hubspot-forwarder (Apache-2.0). docs/snippet.md */
// The server sends this file without its whole-line // comments and indentation
// (forwarder/ingest/snippet.py), so keep comments on their own lines and never put a line
// starting with // inside a string.
((w, d) => {
  "use strict";
  const VERSION = "0.1.0";
  // The prefix of every cookie and localStorage key we own.
  const P = "fwd_";
  const YEAR_S = 31536000;
  const UTM = ["source", "medium", "campaign", "term", "content"];
  const CLICK_IDS = ["gclid", "gbraid", "wbraid", "fbclid", "msclkid", "li_fat_id", "ttclid"];
  // Events kept for retry (the oldest go first), and waiting for consent (memory only).
  const MAX_OUTBOX = 200;
  const MAX_HELD = 100;
  // keepalive fetch and sendBeacon allow 64 KiB in flight.
  const MAX_BODY = 60000;
  const stub = w.forwarder;
  // Loaded twice: the first copy stays in charge.
  if (stub && stub.initialized && !Array.isArray(stub)) return;
  const early = Array.isArray(stub) ? stub.slice() : [];
  const scriptSrc = (d.currentScript || {}).src || "";

  const now = () => new Date().toISOString();
  // randomUUID needs a secure context; plain-http pages get a v4 UUID from getRandomValues.
  const uuid = () =>
    crypto.randomUUID
      ? crypto.randomUUID()
      : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
          (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16),
        );
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const compact = (o) => {
    for (const k in o) if (o[k] == null || o[k] === "") delete o[k];
    return Object.keys(o).length ? o : undefined;
  };

  // Every storage access is guarded: blocked storage and full quotas throw.
  const store = {
    get(k) {
      try {
        return JSON.parse(localStorage.getItem(P + k));
      } catch (e) {}
    },
    set(k, v) {
      try {
        v == null ? localStorage.removeItem(P + k) : localStorage.setItem(P + k, JSON.stringify(v));
      } catch (e) {}
    },
  };
  const cookie = (name) => {
    const m = d.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
    return m ? decodeURIComponent(m[1]) : undefined;
  };

  // opts: set by load(); base: the forwarder's URL without a trailing slash; granted:
  // analytics consent; buf: events for the next flush; held: events made before a consent
  // decision, in memory only.
  let opts, base, url, consentPrefs, anonymousId, userId, touches, timer, retryTimer;
  let granted = true;
  let buf = [];
  let held = [];
  const inFlight = new Set();

  const setCookie = (v, maxAge) => {
    const dom = opts.cookieDomain ? `; domain=${opts.cookieDomain}` : "";
    const sec = location.protocol === "https:" ? "; Secure" : "";
    d.cookie = `${P}aid=${encodeURIComponent(v)}; Max-Age=${maxAge}; path=/; SameSite=Lax${dom}${sec}`;
  };
  // Identity and attribution are written only while consent allows it.
  const persist = () => {
    if (!granted) return;
    setCookie(anonymousId, YEAR_S);
    store.set("aid", anonymousId);
    store.set("uid", userId);
    store.set("touch", touches);
  };

  const readTouch = () => {
    const q = new URLSearchParams(location.search);
    const t = {};
    UTM.forEach((k) => (t[k === "campaign" ? "name" : k] = q.get(`utm_${k}`)));
    const ids = {};
    CLICK_IDS.forEach((k) => (ids[k] = q.get(k)));
    const clickIds = compact(ids);
    if (!compact(t) && !clickIds) return;
    const at = { landingPage: location.href, referrer: d.referrer, timestamp: now() };
    return compact({ ...t, clickIds, ...at });
  };

  const pageProps = () => {
    const { pathname: path, search, href: url } = location;
    return compact({ path, referrer: d.referrer, search, title: d.title, url });
  };

  const context = (extra) => {
    const { userAgent, language: locale } = navigator;
    const c = { library: { name: "forwarder.js", version: VERSION }, page: pageProps(), userAgent };
    Object.assign(c, { locale, hubspotutk: cookie("hubspotutk") });
    const last = touches && touches.lastTouch;
    if (last) {
      const { clickIds, landingPage, referrer, timestamp, ...campaign } = last;
      c.campaign = compact(campaign);
      c.clickIds = clickIds;
      c.attribution = touches;
    }
    if (consentPrefs) c.consent = { categoryPreferences: consentPrefs };
    return compact({ ...c, ...(extra || {}) });
  };

  const enqueue = (type, fields, options) => {
    const o = options || {};
    const e = {
      type,
      messageId: uuid(),
      anonymousId,
      userId,
      timestamp: now(),
      context: context(o.context),
      integrations: o.integrations,
      ...fields,
    };
    compact(e);
    if (!granted) {
      // Undecided: keep it in memory in case consent comes; refused: it never existed.
      if (!consentPrefs && held.push(e) > MAX_HELD) held.shift();
      return;
    }
    buf.push(e);
    if (buf.length >= opts.flushAt) flush();
    else if (!timer) timer = setTimeout(flush, opts.flushInterval);
  };

  // Outbox: every batch is written here before it is sent and removed once the server has
  // answered for good, so a closed tab or a failed request is retried on a later page.
  // The server drops repeated messageIds, so sending twice is safe and losing is not.
  const outbox = () => store.get("outbox") || [];
  const saveOutbox = (list) => {
    let n = list.reduce((s, x) => s + x.events.length, 0);
    while (n > MAX_OUTBOX && list.length) n -= list.shift().events.length;
    store.set("outbox", list.length ? list : null);
  };
  const drop = (id) => saveOutbox(outbox().filter((x) => x.id !== id));
  const body = (entry) =>
    JSON.stringify({ batch: entry.events, writeKey: opts.writeKey, sentAt: now() });

  const transmit = (entry) => {
    if (!granted || inFlight.has(entry.id) || !navigator.onLine) return;
    inFlight.add(entry.id);
    const text = body(entry);
    const done = (retryAfterS) => {
      inFlight.delete(entry.id);
      const list = outbox();
      const x = list.find((y) => y.id === entry.id);
      if (!x) return;
      if (retryAfterS === undefined) {
        saveOutbox(list.filter((y) => y !== x));
        return;
      }
      x.tries = (x.tries || 0) + 1;
      const backoff = Math.min(1000 * 2 ** x.tries, 300000) * (0.5 + Math.random() / 2);
      x.at = Date.now() + Math.max(backoff, retryAfterS * 1000);
      saveOutbox(list);
      schedule();
    };
    fetch(url, { method: "POST", body: text, keepalive: text.length < MAX_BODY, credentials: "omit" })
      .then((r) => {
        // 429 and 5xx are worth retrying; any other answer will never change.
        if (r.status === 429 || r.status >= 500) done(+r.headers.get("Retry-After") || 0);
        else {
          if (!r.ok) console.warn("forwarder.js: batch refused", r.status);
          done();
        }
      })
      .catch(() => done(0));
  };

  const drain = (all) => {
    const t = Date.now();
    outbox().forEach((x) => (all || !x.at || x.at <= t) && transmit(x));
    schedule();
  };
  const schedule = () => {
    const due = outbox().filter((x) => !inFlight.has(x.id)).map((x) => x.at || 0);
    clearTimeout(retryTimer);
    if (due.length) retryTimer = setTimeout(drain, Math.max(0, Math.min(...due) - Date.now()));
  };

  const flush = (beacon) => {
    clearTimeout(timer);
    timer = 0;
    if (!opts || !buf.length) return;
    const entry = { id: uuid(), events: buf };
    buf = [];
    saveOutbox([...outbox(), entry]);
    // Leaving the page: a beacon outlives it. Offline, the outbox keeps it for the next page.
    if (beacon === true) {
      if (navigator.onLine && navigator.sendBeacon(url, body(entry))) drop(entry.id);
    } else transmit(entry);
  };

  const parseArgs = (args) => {
    const s = [];
    while (["string", "number"].includes(typeof args[0]) || args[0] == null) {
      if (!args.length) break;
      s.push(args.shift());
    }
    return [s, isObj(args[0]) ? args.shift() : {}, isObj(args[0]) ? args[0] : {}];
  };

  const api = {
    VERSION,
    initialized: true,
    load(writeKey, o) {
      if (opts) return;
      opts = {
        host: scriptSrc.replace(/\/js\/v1\/forwarder\.js.*$/, ""),
        flushAt: 20,
        flushInterval: 1000,
        page: true,
        ...o,
        writeKey,
      };
      base = opts.host.replace(/\/$/, "");
      url = `${base}/v1/batch`;
      const gpc = opts.honorGPC && navigator.globalPrivacyControl === true;
      // An explicit consent() call, even one made before load(), outranks the defaults.
      granted = consentPrefs ? consentPrefs.analytics === true : opts.consent !== "required" && !gpc;
      anonymousId = cookie(`${P}aid`) || store.get("aid") || uuid();
      userId = store.get("uid") || undefined;
      touches = store.get("touch") || undefined;
      const t = readTouch();
      if (t) touches = { firstTouch: (touches && touches.firstTouch) || t, lastTouch: t };
      persist();
      if (opts.serverCookie && granted) api.refreshCookie();
      if (opts.page) api.page();
      pending.splice(0).forEach(([m, a]) => api[m](...a));
      drain();
    },
    page(...args) {
      const [s, props, options] = parseArgs(args);
      const name = s.pop();
      const category = s.pop();
      enqueue("page", { name, category, properties: { ...pageProps(), ...props } }, options);
    },
    track(event, properties, options) {
      enqueue("track", { event, properties: properties || {} }, options);
    },
    identify(...args) {
      const [s, traits, options] = parseArgs(args);
      if (s[0] != null) userId = String(s[0]);
      persist();
      enqueue("identify", { traits }, options);
    },
    alias(to, from, options) {
      const previousId = from || userId || anonymousId;
      userId = String(to);
      persist();
      enqueue("alias", { previousId }, options);
    },
    reset() {
      userId = undefined;
      touches = undefined;
      anonymousId = uuid();
      persist();
    },
    consent(prefs) {
      consentPrefs = { ...consentPrefs, ...prefs };
      granted = consentPrefs.analytics === true;
      // Before load(), load() applies it.
      if (!opts) return;
      if (!granted) {
        // Withdrawn or refused: forget what waits and what we stored.
        held = [];
        buf = [];
        ["aid", "uid", "touch", "outbox"].forEach((k) => store.set(k, null));
        setCookie("", 0);
        return;
      }
      persist();
      held.forEach((e) => (e.context = { ...e.context, consent: { categoryPreferences: consentPrefs } }));
      buf.push(...held);
      held = [];
      flush();
      drain();
    },
    // Re-issue the anonymousId cookie from the server (see docs/snippet.md, "Server cookie").
    refreshCookie() {
      if (store.get("cookieAt") > Date.now() - 86400000) return;
      const q = new URLSearchParams({ id: anonymousId, domain: opts.cookieDomain || "" });
      fetch(`${base}/v1/cookie?${q}`, { credentials: "same-origin" })
        .then((r) => r.ok && store.set("cookieAt", Date.now()))
        .catch(() => {});
    },
    flush,
    user: () => ({ anonymousId, userId }),
  };

  // Calls made before load() wait here, in order; load() replays them.
  const pending = [];
  const call = (m, args) => {
    if (typeof api[m] !== "function") return;
    if (!opts && !["load", "consent", "user", "flush"].includes(m)) pending.push([m, args]);
    else return api[m](...args);
  };
  const forwarder = { ...api };
  Object.keys(api).forEach((m) => {
    if (typeof api[m] === "function") forwarder[m] = (...a) => call(m, a) ?? forwarder;
  });
  forwarder.push = (a) => call(a[0], a.slice(1));
  w.forwarder = forwarder;

  // A page() queued by the loader snippet replaces the automatic one (analytics.js snippets
  // call page() themselves), and consent given early applies before anything is made.
  const loadCall = early.find((a) => a[0] === "load");
  if (loadCall && early.some((a) => a[0] === "page")) loadCall[2] = { ...loadCall[2], page: false };
  early.filter((a) => a[0] === "consent").forEach((a) => forwarder.push(a));
  if (loadCall) forwarder.push(loadCall);
  early.filter((a) => a[0] !== "load" && a[0] !== "consent").forEach((a) => forwarder.push(a));

  const leave = () => flush(true);
  d.addEventListener("visibilitychange", () => d.visibilityState === "hidden" && leave());
  w.addEventListener("pagehide", leave);
  w.addEventListener("online", () => opts && drain(true));
})(window, document);
