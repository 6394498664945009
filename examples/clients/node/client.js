// The streaming guide's Node.js client, with the URL and filters taken from the command line.
//
//   npm ci          (or: npm install ws)
//   node client.js ws://localhost:8080/ws --asset-codes XLM
//   WS_URL=ws://localhost:8080/ws WS_ASSET_CODES=USDC,XLM node client.js
//
// Same code as the guide ("Client Examples", Node.js): register on open, print the
// confirmation, then every event. Events go to stdout, one JSON object per line (so another
// program can read them); everything else goes to stderr. List filters are comma-separated;
// each flag defaults to its environment variable (WS_TYPES, WS_ACCOUNT_IDS, WS_ASSET_CODES,
// WS_MIN_AMOUNT), and with neither the guide's own filters apply (contract_event, USDC).
// Pass an empty value (--asset-codes '') to not filter on a field.
'use strict';

const WebSocket = require('ws');

const GUIDE_URL = 'ws://localhost:8080/ws';
const GUIDE_FILTERS = { types: 'contract_event', account_ids: '', asset_codes: 'USDC', min_amount: '' };

function split(value) {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function parseArgs(argv, env) {
  const options = { url: env.WS_URL || GUIDE_URL, maxEvents: 0 };
  const raw = {};
  for (const field of Object.keys(GUIDE_FILTERS)) {
    const name = 'WS_' + field.toUpperCase();
    raw[field] = env[name] !== undefined ? env[name] : GUIDE_FILTERS[field];
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.error('usage: node client.js [URL] [--types T,..] [--account-ids G..,..] ' +
                    '[--asset-codes CODE,..] [--min-amount N] [--max-events N]');
      process.exit(0);
    } else if (arg.startsWith('--')) {
      const [flag, inline] = arg.split(/=(.*)/s);
      const value = inline !== undefined ? inline : argv[++i];
      if (value === undefined) throw new Error(flag + ' needs a value');
      const field = flag.slice(2).replace(/-/g, '_');
      if (field === 'max_events') options.maxEvents = Number(value);
      else if (field in GUIDE_FILTERS) raw[field] = value;
      else throw new Error('unknown option ' + flag);
    } else {
      options.url = arg;
    }
  }
  options.filters = {
    types: split(raw.types),
    account_ids: split(raw.account_ids),
    asset_codes: split(raw.asset_codes),
    min_amount: raw.min_amount.trim(),
  };
  return options;
}

const options = parseArgs(process.argv.slice(2), process.env);
let received = 0;

const ws = new WebSocket(options.url);

ws.on('open', () => {
  console.error('Connected to WebSocket server');

  // Send registration
  ws.send(JSON.stringify({
    type: 'register',
    filters: options.filters,
  }));
});

ws.on('message', (data) => {
  const message = JSON.parse(data);

  if (message.type === 'welcome') {
    console.error('Welcome:', message.message);
  } else if (message.type === 'registered') {
    console.error('Registered with filters:', JSON.stringify(message.filters));
    for (const warning of message.warnings || []) console.error('Warning:', warning);
  } else if (message.type === 'error') {
    // A rejected register changes nothing; the connection stays open.
    console.error('Server error ' + message.error + ':', message.message);
  } else {
    // Process your event here: one JSON line per event on stdout.
    process.stdout.write(JSON.stringify(message) + '\n');
    received += 1;
    if (options.maxEvents && received >= options.maxEvents) ws.close(1000);
  }
});

ws.on('error', (error) => {
  console.error('WebSocket error:', error.message);
  process.exitCode = 1;
});

ws.on('close', (code, reason) => {
  console.error('Connection closed:', code, reason.toString());
});

process.on('SIGTERM', () => ws.terminate());
process.on('SIGINT', () => ws.terminate());
