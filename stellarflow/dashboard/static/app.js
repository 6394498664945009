/*
 * The stellarflow dashboard: a filter form, a live table, counters and an events-per-second chart
 * over the stream of StellarflowClient (client.js). Hand-written, no dependency.
 *
 * Event contents come from the chain: they are only ever inserted as text, never as HTML.
 * Everything the page keeps is bounded: MAX_ROWS table rows (and as many held while paused),
 * CHART_SECONDS chart bins, MAX_KEYS counter keys, MAX_NOTICES notices.
 */
(function () {
  'use strict';

  var MAX_ROWS = 500;
  var CHART_SECONDS = 300;
  var MAX_KEYS = 200;
  var MAX_NOTICES = 50;
  var FIELDS = ['types', 'account_ids', 'asset_codes', 'min_amount'];

  var config = JSON.parse(document.getElementById('stellarflow-config').textContent);
  var params = new URLSearchParams(window.location.search);
  var wsURL = params.get('url') ||
    (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + config.ws_path;
  var rowLimit = parseInt(params.get('rows') || '', 10);
  if (rowLimit > 0 && rowLimit <= 5000) {
    MAX_ROWS = rowLimit;
  }
  var storageKey = 'stellarflow:last-id:' + wsURL;
  if (params.get('access_token')) {
    // a daemon with client authentication: browsers cannot set headers, the query string carries it
    wsURL += (wsURL.indexOf('?') < 0 ? '?' : '&') + 'access_token=' + encodeURIComponent(params.get('access_token'));
  }

  var $ = function (id) { return document.getElementById(id); };
  var stateEl = $('state');
  var rowsEl = $('rows');
  var form = $('filters');
  var typesEl = $('types');
  var pauseButton = $('pause');
  var heldEl = $('held');
  var noticesEl = $('notices');
  var chart = $('chart');
  $('max-rows').textContent = String(MAX_ROWS);

  var details = new WeakMap();      // row -> its event (for expanding)
  var pending = [];                 // events received, not yet drawn (bounded)
  var held = [];                    // events received while paused (bounded)
  var paused = false;
  var heldDropped = 0;
  var clearOnRegistered = false;
  var total = 0;
  var byType = new Map();
  var byAsset = new Map();
  var bins = new Array(CHART_SECONDS).fill(0);
  var binSecond = Math.floor(Date.now() / 1000);
  var stateInfo = {state: 'connecting'};

  // -- the filter form -------------------------------------------------------------------

  function splitList(text) {
    return text.split(/[\s,]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function typeNames() {
    return Array.prototype.map.call(typesEl.querySelectorAll('input'), function (box) { return box.value; });
  }

  function setTypes(names, checked) {
    var keep = new Set(checked || formFilters().types);
    var all = Array.from(new Set(names.concat(Array.from(keep)))).sort();
    if (all.join('\n') === typeNames().join('\n')) {
      typesEl.querySelectorAll('input').forEach(function (box) { box.checked = keep.has(box.value); });
      return;
    }
    typesEl.textContent = '';
    all.forEach(function (name) {
      var label = document.createElement('label');
      var box = document.createElement('input');
      box.type = 'checkbox';
      box.name = 'types';
      box.value = name;
      box.checked = keep.has(name);
      label.appendChild(box);
      label.appendChild(document.createTextNode(' ' + name));
      typesEl.appendChild(label);
    });
  }

  function formFilters() {
    var types = Array.prototype.filter.call(typesEl.querySelectorAll('input'), function (box) { return box.checked; })
      .map(function (box) { return box.value; });
    return {
      types: types,
      account_ids: splitList($('account_ids').value),
      asset_codes: splitList($('asset_codes').value),
      min_amount: $('min_amount').value.trim(),
    };
  }

  function fillForm(filters) {
    setTypes(typeNames().length ? typeNames() : config.known_types, filters.types);
    $('account_ids').value = filters.account_ids.join(', ');
    $('asset_codes').value = filters.asset_codes.join(', ');
    $('min_amount').value = filters.min_amount;
  }

  function queryFilters() {
    var filters = {types: [], account_ids: [], asset_codes: [], min_amount: ''};
    FIELDS.forEach(function (field) {
      if (params.has(field)) {
        filters[field] = field === 'min_amount' ? params.get(field).trim() : splitList(params.get(field));
      }
    });
    return filters;
  }

  function rememberInURL(filters) {
    var query = new URLSearchParams(window.location.search);
    FIELDS.forEach(function (field) {
      var value = field === 'min_amount' ? filters[field] : filters[field].join(',');
      if (value) { query.set(field, value); } else { query.delete(field); }
    });
    var text = query.toString();
    window.history.replaceState(null, '', window.location.pathname + (text ? '?' + text : ''));
  }

  function clearErrors() {
    FIELDS.concat(['general']).forEach(function (field) {
      var el = $('error-' + field);
      el.hidden = true;
      el.textContent = '';
      var input = field === 'types' ? $('field-types') : $(field);
      if (input) { input.removeAttribute('aria-invalid'); }
    });
  }

  function showError(message) {
    var field = (message.field || '').replace(/^filters\./, '');
    var known = FIELDS.indexOf(field) >= 0;
    var el = $('error-' + (known ? field : 'general'));
    el.textContent = message.message || message.error || 'error';
    el.hidden = false;
    if (known) {
      var input = field === 'types' ? $('field-types') : $(field);
      input.setAttribute('aria-invalid', 'true');
      if (field !== 'types' && document.activeElement && form.contains(document.activeElement)) {
        input.focus();
      }
    }
    dashboard.errors.push(message);
  }

  function apply(filters) {
    clearErrors();
    clearOnRegistered = true;
    rememberInURL(filters);
    client.setFilters(filters);
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    apply(formFilters());
  });
  $('clear').addEventListener('click', function () {
    var none = {types: [], account_ids: [], asset_codes: [], min_amount: ''};
    fillForm(none);
    apply(none);
  });

  // click an account or an asset in the table: filter by it alone
  rowsEl.addEventListener('click', function (e) {
    var target = e.target.closest('button[data-account], button[data-asset]');
    if (target) {
      e.stopPropagation();
      var filters = formFilters();
      if (target.dataset.account) {
        filters.account_ids = [target.dataset.account];
      } else {
        filters.asset_codes = [target.dataset.asset];
      }
      fillForm(filters);
      apply(filters);
      return;
    }
    var row = e.target.closest('tr.row');
    if (row) { toggle(row); }
  });
  rowsEl.addEventListener('keydown', function (e) {
    var row = e.target;
    if (row.classList && row.classList.contains('row') && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      toggle(row);
    }
  });

  // -- the table ---------------------------------------------------------------------------

  function shortId(text) {
    return text.length > 14 ? text.slice(0, 5) + '…' + text.slice(-4) : text;
  }

  function cell(row, label, className) {
    var td = document.createElement('td');
    td.dataset.label = label;
    if (className) { td.className = className; }
    row.appendChild(td);
    return td;
  }

  function eventType(event) {
    return event.event_type || event.type || '?';
  }

  function assetOf(event) {
    return typeof event.asset_code === 'string' && event.asset_code ? event.asset_code : null;
  }

  function accountsOf(event) {
    var seen = [];
    [event.from, event.to].concat(Array.isArray(event.account_ids) ? event.account_ids : []).forEach(function (a) {
      if (typeof a === 'string' && a && seen.indexOf(a) < 0) { seen.push(a); }
    });
    if (!seen.length && typeof event.contract_id === 'string') { seen.push(event.contract_id); }
    return seen.slice(0, 4);
  }

  function makeRow(event) {
    var row = document.createElement('tr');
    row.className = 'row';
    row.tabIndex = 0;
    row.setAttribute('aria-expanded', 'false');
    if (typeof event.id === 'string') { row.dataset.id = event.id; }
    cell(row, 'Ledger').textContent = event.ledger === undefined ? '' : String(event.ledger);
    var closed = typeof event.ledger_closed_at === 'string' ? event.ledger_closed_at : '';
    var when = cell(row, 'Closed at');
    when.textContent = closed.replace('T', ' ').replace(/(\.\d+)?Z$/, '');
    when.title = closed;
    cell(row, 'Type').textContent = eventType(event);
    var asset = assetOf(event);
    var assetCell = cell(row, 'Asset');
    if (asset) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.asset = asset;
      b.textContent = asset + (event.asset_verified === false ? ' (unverified)' : '');
      b.title = 'filter by ' + asset + (event.asset_issuer ? ' (issuer ' + event.asset_issuer + ')' : '');
      assetCell.appendChild(b);
    }
    cell(row, 'Amount', 'num').textContent = typeof event.amount === 'string' ? event.amount : '';
    var accounts = cell(row, 'Accounts', 'accounts');
    accountsOf(event).forEach(function (address, i) {
      if (i) { accounts.appendChild(document.createTextNode(i === 1 && event.from && event.to ? ' → ' : ' ')); }
      var a = document.createElement('button');
      a.type = 'button';
      a.className = 'chip account';
      a.dataset.account = address;
      a.title = 'filter by ' + address;
      a.textContent = shortId(address);
      accounts.appendChild(a);
    });
    details.set(row, event);
    return row;
  }

  function toggle(row) {
    var next = row.nextElementSibling;
    if (next && next.classList.contains('detail')) {
      next.remove();
      row.setAttribute('aria-expanded', 'false');
      return;
    }
    var detail = document.createElement('tr');
    detail.className = 'detail';
    var td = document.createElement('td');
    td.colSpan = 6;
    var pre = document.createElement('pre');
    pre.textContent = JSON.stringify(details.get(row), null, 2);
    td.appendChild(pre);
    detail.appendChild(td);
    row.after(detail);
    row.setAttribute('aria-expanded', 'true');
  }

  function trimRows() {
    var rows = rowsEl.querySelectorAll('tr.row');
    for (var i = rows.length - 1; i >= MAX_ROWS; i--) {
      var next = rows[i].nextElementSibling;
      if (next && next.classList.contains('detail')) { next.remove(); }
      rows[i].remove();
    }
  }

  function draw() {
    if (!pending.length) { return; }
    var events = pending.slice(-MAX_ROWS);
    pending = [];
    var fragment = document.createDocumentFragment();
    for (var i = events.length - 1; i >= 0; i--) {
      fragment.appendChild(makeRow(events[i]));
    }
    rowsEl.insertBefore(fragment, rowsEl.firstChild);
    trimRows();
  }

  function clearTable() {
    rowsEl.textContent = '';
    pending = [];
    held = [];
    heldDropped = 0;
    showHeld();
  }

  function showHeld() {
    heldEl.textContent = paused ? (held.length + heldDropped) + ' new while paused' +
      (heldDropped ? ' (oldest ' + heldDropped + ' not kept)' : '') : '';
  }

  pauseButton.addEventListener('click', function () {
    // what arrived before the click is shown now; the table then stands still
    draw();
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    pauseButton.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      pending = pending.concat(held).slice(-MAX_ROWS);
      held = [];
      heldDropped = 0;
      draw();
    }
    showHeld();
  });

  // -- counters and chart ------------------------------------------------------------------

  function count(map, key) {
    if (map.has(key)) {
      map.set(key, map.get(key) + 1);
    } else if (map.size < MAX_KEYS) {
      map.set(key, 1);
    } else {
      map.set('(other)', (map.get('(other)') || 0) + 1);
    }
  }

  function advanceBins(now) {
    var second = Math.floor(now / 1000);
    var steps = Math.min(second - binSecond, CHART_SECONDS);
    for (var i = 0; i < steps; i++) {
      bins.shift();
      bins.push(0);
    }
    if (second > binSecond) { binSecond = second; }
  }

  function renderCounts(el, map) {
    var entries = Array.from(map.entries()).sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
    el.textContent = '';
    entries.slice(0, 8).forEach(function (entry) {
      var li = document.createElement('li');
      var name = document.createElement('span');
      name.className = 'name';
      name.textContent = entry[0];
      var n = document.createElement('span');
      n.className = 'n';
      n.textContent = String(entry[1]);
      li.appendChild(name);
      li.appendChild(n);
      el.appendChild(li);
    });
  }

  function drawChart() {
    var ratio = window.devicePixelRatio || 1;
    var width = chart.clientWidth;
    var height = chart.clientHeight;
    if (!width || !height) { return; }
    if (chart.width !== Math.round(width * ratio) || chart.height !== Math.round(height * ratio)) {
      chart.width = Math.round(width * ratio);
      chart.height = Math.round(height * ratio);
    }
    var ctx = chart.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var peak = Math.max(1, Math.max.apply(null, bins));
    var top = 14;
    var bottom = height - 14;
    var barWidth = width / CHART_SECONDS;
    var style = getComputedStyle(chart);
    ctx.fillStyle = style.getPropertyValue('--bar').trim() || '#3b6fd8';
    for (var i = 0; i < CHART_SECONDS; i++) {
      if (bins[i]) {
        var h = (bottom - top) * bins[i] / peak;
        ctx.fillRect(i * barWidth, bottom - h, Math.max(1, barWidth - 0.5), h);
      }
    }
    ctx.fillStyle = style.getPropertyValue('--axis').trim() || '#666';
    ctx.strokeStyle = ctx.fillStyle;
    ctx.beginPath();
    ctx.moveTo(0, bottom + 0.5);
    ctx.lineTo(width, bottom + 0.5);
    ctx.stroke();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    ctx.fillText(peak + '/s', 2, 0);
    ctx.textBaseline = 'bottom';
    ctx.fillText('−5 min', 2, height);
    var now = 'now';
    ctx.fillText(now, width - ctx.measureText(now).width - 2, height);
  }

  function renderStats() {
    advanceBins(Date.now());
    $('total').textContent = String(total);
    $('rate').textContent = String(bins[CHART_SECONDS - 2]);
    renderCounts($('by-type'), byType);
    renderCounts($('by-asset'), byAsset);
    drawChart();
  }

  // -- connection state and notices --------------------------------------------------------

  function notice(kind, text) {
    var li = document.createElement('li');
    li.className = kind;
    var time = document.createElement('time');
    time.textContent = new Date().toISOString().slice(11, 19);
    li.appendChild(time);
    li.appendChild(document.createTextNode(' ' + text));
    noticesEl.insertBefore(li, noticesEl.firstChild);
    while (noticesEl.children.length > MAX_NOTICES) { noticesEl.lastChild.remove(); }
    dashboard.notices.push({kind: kind, text: text});
    if (dashboard.notices.length > MAX_NOTICES) { dashboard.notices.shift(); }
  }

  function renderState() {
    var text;
    switch (stateInfo.state) {
      case 'connecting': text = 'connecting…'; break;
      case 'registering': text = 'registering…'; break;
      case 'live': text = 'live'; break;
      case 'reconnecting':
        text = 'reconnecting in ' + Math.max(0, Math.ceil((stateInfo.at - Date.now()) / 1000)) + ' s' +
          (stateInfo.code ? ' (closed: ' + stateInfo.code + (stateInfo.reason ? ' ' + stateInfo.reason : '') + ')' : '');
        break;
      default: text = stateInfo.state;
    }
    if (stateEl.textContent !== text) { stateEl.textContent = text; }
    stateEl.dataset.state = stateInfo.state;
  }

  // -- the client --------------------------------------------------------------------------

  var initial = queryFilters();
  setTypes(config.known_types, initial.types);
  fillForm(initial);

  var saved = null;
  try { saved = window.sessionStorage.getItem(storageKey); } catch (e) { /* storage off */ }

  var client = new window.StellarflowClient({url: wsURL, filters: initial, resumeAfter: saved});
  var dashboard = window.dashboard = {
    client: client,
    errors: [],
    notices: [],
    registrations: [],
    maxRows: MAX_ROWS,
    /** The page as it is now (drawn first): for tests and the console. */
    snapshot: function () {
      draw();
      renderStats();
      return {
        state: stateInfo.state,
        registrations: dashboard.registrations,
        errors: dashboard.errors,
        notices: dashboard.notices,
        total: total,
        byType: Object.fromEntries(byType),
        byAsset: Object.fromEntries(byAsset),
        events: Array.prototype.map.call(rowsEl.querySelectorAll('tr.row'), function (r) { return details.get(r); }),
      };
    },
  };

  client.on('state', function (info) {
    if (info.state === 'reconnecting' && stateInfo.state !== 'reconnecting') {
      notice('warn', 'connection lost' + (info.code ? ' (' + info.code + (info.reason ? ' ' + info.reason : '') + ')' : '') +
        '; reconnecting with resume_after');
    }
    stateInfo = info;
    renderState();
  });
  client.on('registered', function (message) {
    dashboard.registrations.push(message);
    clearErrors();
    if (Array.isArray(message.available_types)) {
      setTypes(message.available_types);
    }
    if (clearOnRegistered) {
      clearOnRegistered = false;
      clearTable();
      byType.clear();
      byAsset.clear();
      total = 0;
    }
    $('in-force').textContent = JSON.stringify(message.filters);
    if (message.resumed === true) {
      notice('ok', 'resumed after ' + message.resume_after + ': nothing missed');
    }
  });
  client.on('gap', function (gap) {
    var text = gap.to ? 'gap reported by the server: events after ' + gap.from_after + ' up to ' + gap.to +
      (gap.ledgers ? ' (ledgers ' + gap.ledgers[0] + '–' + gap.ledgers[1] + ')' : '') + ' cannot be replayed'
      : 'the server could not resume after ' + gap.from_after + ' (' + gap.reason + '): events may be missing';
    notice('gap', text);
  });
  client.on('warning', function (text) { notice('warn', text); });
  client.on('error', function (message) {
    if ((message.field || '').indexOf('filters') === 0 || message.error === 'invalid_filters') {
      // a refused register: nothing changed on the server
      showError(message);
      clearOnRegistered = false;
    } else {
      // about the connection (registration_timeout, queue_full, replay_overrun, ...)
      notice('warn', 'server error ' + message.error + ': ' + (message.message || ''));
      dashboard.errors.push(message);
    }
  });
  client.on('event', function (event) {
    total += 1;
    count(byType, eventType(event));
    var asset = assetOf(event);
    if (asset) { count(byAsset, asset + (event.asset_verified === false ? ' (unverified)' : '')); }
    advanceBins(Date.now());
    bins[CHART_SECONDS - 1] += 1;
    if (paused) {
      held.push(event);
      if (held.length > MAX_ROWS) { held.shift(); heldDropped += 1; }
    } else {
      pending.push(event);
      if (pending.length > MAX_ROWS) { pending.shift(); }
    }
  });

  function save() {
    if (client.lastId) {
      try { window.sessionStorage.setItem(storageKey, client.lastId); } catch (e) { /* storage off */ }
    }
  }

  setInterval(function () { draw(); showHeld(); renderState(); }, 100);
  setInterval(function () { renderStats(); save(); }, 1000);
  window.addEventListener('pagehide', save);
  window.addEventListener('resize', drawChart);
  renderStats();
  client.start();
}());
