/*
 * stellarflow client: stay connected to a stellarflow WebSocket and get every matching event once.
 *
 * Served by the daemon at /client.js (beside the dashboard page) and usable from Node:
 *
 *   <script src="/client.js"></script>                       // browser: window.StellarflowClient
 *   const StellarflowClient = require('./client.js');        // Node >= 18, with the ws package:
 *   new StellarflowClient({url, filters, WebSocket: require('ws')})
 *
 * What it does (docs/websocket.md describes the protocol, examples/clients/README.md this API):
 *  - connects, registers its filters, re-registers when they change (setFilters);
 *  - reconnects whenever the connection ends, after a delay growing exponentially from
 *    backoff.initial to backoff.max seconds with "equal jitter" (half fixed, half random), reset
 *    once the server confirmed a registration;
 *  - remembers the id of the last event (or the last `cursor` message: it asks for them with
 *    `cursor_updates`) and registers with `resume_after` on every reconnect, so nothing the
 *    server still holds is lost;
 *  - drops events whose id is not after the last one (no duplicate around a reconnect);
 *  - reports gaps: a `registered` reply with `gap`, or a resume the server refused.
 *
 * No dependency; plain ES2018. Licence: the project's (Apache-2.0).
 */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.StellarflowClient = factory();
  }
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var FILTER_FIELDS = ['types', 'account_ids', 'asset_codes', 'min_amount'];
  // An event id or cursor: "%019d-%010d". Same width, so they sort as strings.
  var ID = /^\d{19}-\d{10}$/;

  /** Whether position `a` is after position `b` (ids and cursors; anything is after null). */
  function isAfter(a, b) {
    if (b === null || b === undefined) {
      return true;
    }
    if (ID.test(a) && ID.test(b)) {
      return a > b;
    }
    return String(a) > String(b);
  }

  /** Filters with every field present: lists of strings and a min_amount string. */
  function normaliseFilters(filters) {
    var out = {types: [], account_ids: [], asset_codes: [], min_amount: ''};
    filters = filters || {};
    FILTER_FIELDS.forEach(function (field) {
      var value = filters[field];
      if (field === 'min_amount') {
        out.min_amount = value === undefined || value === null ? '' : String(value).trim();
      } else if (Array.isArray(value)) {
        out[field] = value.map(function (v) { return String(v).trim(); }).filter(function (v) { return v !== ''; });
      } else if (typeof value === 'string') {
        out[field] = value.split(/[\s,]+/).filter(function (v) { return v !== ''; });
      }
    });
    return out;
  }

  /** Exponential backoff with equal jitter: attempt n waits between d/2 and d, d = min(max, initial * factor**n). */
  function Backoff(options, random) {
    options = options || {};
    this.initial = options.initial === undefined ? 0.5 : options.initial;
    this.max = options.max === undefined ? 30 : options.max;
    this.factor = options.factor === undefined ? 2 : options.factor;
    this.random = random || Math.random;
    this.attempt = 0;
  }
  Backoff.prototype.next = function () {
    var ceiling = Math.min(this.max, this.initial * Math.pow(this.factor, this.attempt));
    this.attempt += 1;
    return ceiling / 2 + this.random() * ceiling / 2;
  };
  Backoff.prototype.reset = function () {
    this.attempt = 0;
  };

  /**
   * options: url (ws:// or wss://), filters, resumeAfter (a position to start after),
   * WebSocket (constructor; default the global one), backoff ({initial, max, factor} seconds),
   * idleTimeout (seconds without any message before reconnecting; 0, the default: never —
   * a quiet server sends nothing the page can see, its pings are answered by the browser),
   * random, setTimeout, clearTimeout (for tests).
   */
  function StellarflowClient(options) {
    if (!(this instanceof StellarflowClient)) {
      return new StellarflowClient(options);
    }
    options = options || {};
    if (!options.url) {
      throw new TypeError('StellarflowClient: options.url is required');
    }
    this.url = options.url;
    this.filters = normaliseFilters(options.filters);
    this.lastId = options.resumeAfter || null;
    this.WebSocket = options.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    if (!this.WebSocket) {
      throw new TypeError('StellarflowClient: no WebSocket; pass options.WebSocket (Node: require("ws"))');
    }
    this.backoff = new Backoff(options.backoff, options.random);
    this.idleTimeout = options.idleTimeout || 0;
    this._setTimeout = options.setTimeout || function (fn, ms) { return setTimeout(fn, ms); };
    this._clearTimeout = options.clearTimeout || function (handle) { clearTimeout(handle); };
    this.state = 'idle';
    this.resumeSupported = true;
    this.cursorsSupported = true;
    this.accepted = null;           // the filters of the last `registered` reply
    this.connections = 0;
    this.delivered = 0;
    this.duplicates = 0;
    this._ws = null;
    this._retry = null;
    this._idle = null;
    this._resuming = false;
    this._listeners = {};
  }

  StellarflowClient.Backoff = Backoff;
  StellarflowClient.isAfter = isAfter;
  StellarflowClient.normaliseFilters = normaliseFilters;
  StellarflowClient.FILTER_FIELDS = FILTER_FIELDS;

  /**
   * Listen: 'event' (event), 'state' ({state, attempt, delay, code, reason}),
   * 'registered' (the reply), 'gap' ({from_after, to, ledgers} or {from_after, reason}),
   * 'error' (the server's error message), 'warning' (text), 'message' (anything else).
   */
  StellarflowClient.prototype.on = function (name, fn) {
    (this._listeners[name] = this._listeners[name] || []).push(fn);
    return this;
  };

  StellarflowClient.prototype._emit = function (name, value) {
    var fns = this._listeners[name] || [];
    for (var i = 0; i < fns.length; i++) {
      fns[i].call(this, value);
    }
  };

  StellarflowClient.prototype._setState = function (state, details) {
    this.state = state;
    var info = {state: state};
    for (var key in details || {}) {
      info[key] = details[key];
    }
    this._emit('state', info);
  };

  /** Connect (again, after stop()). */
  StellarflowClient.prototype.start = function () {
    if (this.state === 'idle' || this.state === 'stopped') {
      this._connect();
    }
    return this;
  };

  /** Close the connection and stop reconnecting. */
  StellarflowClient.prototype.stop = function () {
    this._clear();
    var ws = this._ws;
    this._ws = null;
    this._setState('stopped');
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, 'client stopped'); } catch (e) { /* already closed */ }
    }
  };

  /** New filters, registered at once when connected (nothing replayed), else on connect. */
  StellarflowClient.prototype.setFilters = function (filters) {
    this.filters = normaliseFilters(filters);
    if (this._ws && this._ws.readyState === 1) {
      this._register(false);
    }
  };

  StellarflowClient.prototype._clear = function () {
    if (this._retry !== null) {
      this._clearTimeout(this._retry);
      this._retry = null;
    }
    if (this._idle !== null) {
      this._clearTimeout(this._idle);
      this._idle = null;
    }
  };

  StellarflowClient.prototype._connect = function () {
    var self = this;
    this._clear();
    this._setState('connecting', {attempt: this.backoff.attempt});
    var ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (e) {
      this._lost(null, String(e && e.message || e));
      return;
    }
    this._ws = ws;
    ws.onopen = function () {
      if (self._ws !== ws) { return; }
      self.connections += 1;
      self._setState('registering');
      self._register(true);
      self._touch();
    };
    ws.onmessage = function (message) {
      if (self._ws !== ws) { return; }
      self._touch();
      self._received(message.data);
    };
    ws.onerror = function () {
      // always followed by close; the browser tells nothing more.
    };
    ws.onclose = function (e) {
      if (self._ws !== ws) { return; }
      self._ws = null;
      self._lost(e.code, e.reason);
    };
  };

  StellarflowClient.prototype._touch = function () {
    var self = this;
    if (!this.idleTimeout) { return; }
    if (this._idle !== null) { this._clearTimeout(this._idle); }
    this._idle = this._setTimeout(function () {
      self._idle = null;
      var ws = self._ws;
      self._ws = null;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(); } catch (e) { /* ignore */ }
      }
      self._lost(null, 'nothing received for ' + self.idleTimeout + ' s');
    }, this.idleTimeout * 1000);
  };

  StellarflowClient.prototype._lost = function (code, reason) {
    var self = this;
    this._clear();
    if (this.state === 'stopped') { return; }
    var delay = this.backoff.next();
    this._setState('reconnecting', {
      code: code, reason: reason || '', delay: delay, attempt: this.backoff.attempt,
      at: Date.now() + delay * 1000,
    });
    this._retry = this._setTimeout(function () {
      self._retry = null;
      self._connect();
    }, delay * 1000);
  };

  StellarflowClient.prototype._register = function (resume) {
    var message = {type: 'register', filters: this.filters};
    if (this.cursorsSupported) {
      // `cursor` messages keep lastId current when the filters match rarely (a small replay)
      message.cursor_updates = true;
    }
    this._resuming = Boolean(resume && this.resumeSupported && this.lastId !== null);
    if (this._resuming) {
      message.resume_after = this.lastId;
    }
    this._ws.send(JSON.stringify(message));
  };

  StellarflowClient.prototype._received = function (text) {
    var message;
    try {
      message = JSON.parse(typeof text === 'string' ? text : String(text));
    } catch (e) {
      this._emit('warning', 'not JSON, ignored: ' + String(text).slice(0, 200));
      return;
    }
    if (message === null || typeof message !== 'object') {
      this._emit('warning', 'not a JSON object, ignored');
      return;
    }
    switch (message.type) {
      case 'welcome':
        return;
      case 'registered':
        return this._registered(message);
      case 'cursor':
        return this._advance(message.cursor);
      case 'error':
        return this._error(message);
      default:
        if (typeof message.id === 'string' || message.ledger !== undefined) {
          return this._event(message);
        }
        this._emit('message', message);
    }
  };

  StellarflowClient.prototype._registered = function (message) {
    this.backoff.reset();
    this._resuming = false;
    this.accepted = message.filters || null;
    this._setState('live');
    this._emit('registered', message);
    (message.warnings || []).forEach(function (w) { this._emit('warning', w); }, this);
    if (message.gap) {
      this._emit('gap', message.gap);
    }
  };

  StellarflowClient.prototype._error = function (message) {
    var field = message.field || '';
    if (field === 'cursor_updates' && message.error === 'unknown_field' && this.cursorsSupported) {
      // a server from before cursor_updates: register without it (it sends cursors to resumers)
      this.cursorsSupported = false;
      if (this._ws) {
        this._register(this._resuming);
      }
      return;
    }
    if (this._resuming && field === 'resume_after') {
      // The server cannot resume from our position: register without it, say what is lost.
      this._resuming = false;
      if (message.error === 'unknown_field') {
        this.resumeSupported = false;
        this._emit('warning', 'server does not support resume_after; registering without it');
      }
      this._emit('gap', {from_after: this.lastId, to: null, reason: message.error, message: message.message});
      if (this._ws) {
        this._register(false);
      }
      return;
    }
    if (field.indexOf('filters') === 0 && this.accepted) {
      // The filters in force stay those of the last registration (docs/websocket.md).
      this.filters = normaliseFilters(this.accepted);
    }
    this._emit('error', message);
  };

  StellarflowClient.prototype._advance = function (cursor) {
    if (typeof cursor === 'string' && isAfter(cursor, this.lastId)) {
      this.lastId = cursor;
    }
  };

  StellarflowClient.prototype._event = function (event) {
    if (typeof event.id === 'string') {
      if (!isAfter(event.id, this.lastId)) {
        this.duplicates += 1;
        return;
      }
      this.lastId = event.id;
    }
    this.delivered += 1;
    this._emit('event', event);
  };

  return StellarflowClient;
}));
