// A reconnecting, resuming Node.js client built on the daemon's own client module (client.js,
// served at http://<host>:8080/client.js beside the dashboard; the copy in this repository is
// stellarflow/dashboard/static/client.js).
//
//   npm ci
//   node resuming.js ws://localhost:8080/ws --asset-codes XLM
//   # outside this repository: fetch the module from the daemon and point at it
//   curl -o stellarflow-client.js http://localhost:8080/client.js
//   STELLARFLOW_CLIENT_JS=$PWD/stellarflow-client.js node resuming.js ws://localhost:8080/ws
//
// Reconnects after any close or error with exponential backoff and jitter, registers again
// with resume_after = the last event id (or cursor), drops repeated events and reports gaps.
// Events go to stdout, one JSON object per line; the log to stderr. Flags: --types,
// --account-ids, --asset-codes (comma-separated), --min-amount, --resume-after ID,
// --backoff-initial S, --backoff-max S, --max-events N.
'use strict';

const path = require('path');
const WebSocket = require('ws');

const StellarflowClient = require(process.env.STELLARFLOW_CLIENT_JS ||
  path.join(__dirname, '..', '..', '..', 'stellarflow', 'dashboard', 'static', 'client.js'));

function parseArgs(argv) {
  const options = {
    url: 'ws://localhost:8080/ws',
    filters: { types: '', account_ids: '', asset_codes: '', min_amount: '' },
    resumeAfter: null,
    backoff: { initial: 0.5, max: 30 },
    maxEvents: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      options.url = arg;
      continue;
    }
    let [name, value] = arg.slice(2).split(/=(.*)/s);
    if (value === undefined) {
      value = argv[++i] === undefined ? '' : argv[i];
    }
    const field = name.replace(/-/g, '_');
    if (field in options.filters) {
      options.filters[field] = value;
    } else if (name === 'resume-after') {
      options.resumeAfter = value;
    } else if (name === 'backoff-initial') {
      options.backoff.initial = Number(value);
    } else if (name === 'backoff-max') {
      options.backoff.max = Number(value);
    } else if (name === 'max-events') {
      options.maxEvents = Number(value);
    } else {
      throw new Error('unknown option --' + name);
    }
  }
  return options;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const log = (text) => process.stderr.write(new Date().toISOString() + ' ' + text + '\n');
  const client = new StellarflowClient({
    url: options.url,
    filters: options.filters,
    resumeAfter: options.resumeAfter,
    backoff: options.backoff,
    WebSocket,
  });
  client.on('state', (s) => {
    if (s.state === 'reconnecting') {
      log('connection closed' + (s.code ? ': code ' + s.code + (s.reason ? ' ' + s.reason : '') : '') +
          '; reconnecting in ' + s.delay.toFixed(2) + ' s (attempt ' + s.attempt + ')');
    } else if (s.state === 'registering') {
      log('connected (connection ' + client.connections + ')' +
          (client.lastId ? '; registering with resume_after ' + client.lastId : ''));
    }
  });
  client.on('registered', (m) => {
    log('registered: filters=' + JSON.stringify(m.filters) + ' resumed=' + JSON.stringify(m.resumed === undefined ? null : m.resumed));
  });
  client.on('gap', (gap) => log('gap reported by server: ' + JSON.stringify(gap)));
  client.on('warning', (text) => log('warning: ' + text));
  client.on('error', (m) => log('server error ' + m.error + ': ' + m.message));
  client.on('event', (event) => {
    process.stdout.write(JSON.stringify(event) + '\n');
    if (options.maxEvents && client.delivered >= options.maxEvents) {
      client.stop();
    }
  });
  const stop = () => { client.stop(); log('stopped after ' + client.delivered + ' events (' + client.duplicates + ' repeats dropped)'); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  client.start();
}

main();
