// TCLearn's dashboard: reads the members' API, follows its event stream, and has the member's
// own wallet (the polkadot.js extension interface, `window.injectedWeb3`, which Talisman and
// SubWallet also provide) sign in and sign contract calls. The key never leaves the wallet.

import { ApiPromise, WsProvider } from '@polkadot/api';
import { web3Accounts, web3Enable, web3FromAddress } from '@polkadot/extension-dapp';
import { compactAddLength, compactFromU8a, hexToU8a, stringToHex, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, decodeAddress } from '@polkadot/util-crypto';

const METRIC_ONE = 1_000_000;
const STRENGTH_ONE = 1_000_000_000;
const $ = (id) => document.getElementById(id);
const short = (hex) => (hex ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : '—');
const metric = (fixed) => (fixed === null || fixed === undefined ? '—' : (fixed / METRIC_ONE).toFixed(4));
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let coalition = null;
let session = null; // { address, token }
let chainApi = null;

async function get(path) {
  const response = await fetch(path, session ? { headers: { authorization: `Bearer ${session.token}` } } : {});
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function post(path, body) {
  const headers = { 'content-type': 'application/json' };
  if (session) headers.authorization = `Bearer ${session.token}`;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `${path}: ${response.status}`);
  return answer;
}

function chart(blocks) {
  const width = 440;
  const height = 180;
  const pad = 32;
  if (blocks.length === 0) return '<p class="muted">no block</p>';
  const values = blocks.map((b) => b.performance / METRIC_ONE);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const x = (i) => pad + (blocks.length === 1 ? 0 : (i * (width - 2 * pad)) / (blocks.length - 1));
  const y = (v) => height - pad - ((v - low) / span) * (height - 2 * pad);
  const points = values.map((v, i) => `${x(i)},${y(v)}`).join(' ');
  const dots = values
    .map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="4" fill="${blocks[i].contributor ? '#1d3557' : '#e63946'}"><title>block ${i}: ${v.toFixed(4)}</title></circle>`)
    .join('');
  const labels = values.map((v, i) => `<text x="${x(i)}" y="${height - 10}" font-size="10" text-anchor="middle">${i}</text>`).join('');
  return `<svg id="chain-chart" width="${width}" height="${height}" role="img" aria-label="metric per block">
    <text x="4" y="${y(high) + 4}" font-size="10">${high.toFixed(3)}</text>
    <text x="4" y="${y(low) + 4}" font-size="10">${low.toFixed(3)}</text>
    <polyline points="${points}" fill="none" stroke="#457b9d" stroke-width="2"/>${dots}${labels}</svg>`;
}

async function renderChain() {
  coalition = await get('/api/coalition');
  $('coalition').textContent = `${short(coalition.address)} · tip ${coalition.tip} · ${coalition.metric} · λ ${coalition.lambda_ppm / 1e6} · ${coalition.members} members`;
  const blocks = await get('/api/blocks');
  $('chart').innerHTML = chart(blocks);
  $('blocks').innerHTML = '<tr><th>block</th><th>contributor</th><th>metric</th><th>samples</th><th>hash</th></tr>' +
    blocks.map((b) => `<tr><td>${b.index}</td><td>${b.contributor ? short(b.contributor) : (b.index ? 'revert' : 'genesis')}</td><td>${metric(b.performance)}</td><td>${b.samples}</td><td><code>${short(b.hash)}</code></td></tr>`).join('');
  // Contribution: the metric gains of the blocks each member contributed (the API's rule).
  const members = await get('/api/members');
  const budget = coalition.privacy_budget ? ` of ${coalition.privacy_budget.epsilon}` : '';
  $('members').innerHTML = '<tr><th>member</th><th>samples</th><th>strength</th><th>contribution</th><th>privacy spent (ε)</th></tr>' +
    members.map((m) => `<tr><td><code>${short(m.address)}</code></td><td>${m.samples}</td><td>${(m.strength / STRENGTH_ONE).toFixed(3)}</td><td class="contribution">${metric(m.contribution)}</td><td class="privacy">${m.epsilon_spent.toFixed(3)}${budget}</td></tr>`).join('');
}

async function renderRound() {
  const response = await fetch('/api/rounds/current');
  if (response.status === 404) return;
  const round = await response.json();
  const rows = round.validators.map((v) => `<tr><td><code>${short(v.validator)}</code></td><td>${v.committed ? '✓' : ''}</td><td>${v.revealed ? '✓' : ''}</td><td>${v.refused ? escape(v.refused) : metric(v.g_metric)}</td><td>${v.deviation ? `<span class="bad">${escape(v.deviation)}</span>` : ''}</td><td>${v.attested ? '✓' : ''}</td></tr>`).join('');
  $('round').innerHTML = `<p>Round ${round.id} by <code>${short(round.proposer)}</code> on block ${round.parent}: <b id="round-phase">${round.phase}</b>${round.reason ? ` (<span class="bad">${escape(round.reason)}</span>)` : ''} · merged ${metric(round.performance)} · ${round.accepts} accept, ${round.deviants} deviant${round.block !== null ? ` · block ${round.block}` : ''}</p>
    <table><tr><th>validator</th><th>commit</th><th>reveal</th><th>G metric</th><th>deviation</th><th>attest</th></tr>${rows}</table>`;
}

async function renderProposals() {
  const proposals = await get('/api/proposals');
  $('proposals').innerHTML = '<tr><th>#</th><th>action</th><th>ayes</th><th>nays</th><th>status</th><th></th></tr>' +
    proposals.map((p) => `<tr id="proposal-${p.id}"><td>${p.id}</td><td>${escape(p.action)}</td><td class="ayes">${p.ayes}</td><td class="nays">${p.nays}</td><td>${p.status}${p.reason ? ` (${escape(p.reason)})` : ''}</td><td>${p.status === 'open'
      ? `<button data-proposal="${p.id}" data-aye="true">Aye</button><button data-proposal="${p.id}" data-aye="false">Nay</button><button data-enact="${p.id}">Enact</button>`
      : ''}</td></tr>`).join('');
  for (const button of document.querySelectorAll('button[data-proposal]')) {
    button.onclick = () => act('vote', { proposal: Number(button.dataset.proposal), aye: button.dataset.aye === 'true' });
  }
  for (const button of document.querySelectorAll('button[data-enact]')) {
    button.onclick = () => act('enact', { proposal: Number(button.dataset.enact) });
  }
}

// SHA-256 over the concatenation of `parts` (Uint8Arrays), from WebCrypto.
async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { joined.set(part, at); at += part.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
}

const toHex = (bytes) => `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;

// The RFC 6962 Merkle tree hash of every prefix of `leaves` whose length is in `sizes`, as a
// Map from length to hex root, in one pass: a stack of the perfect subtrees so far (sizes the
// binary digits of the count, largest first), folded right to left at each wanted length.
export async function prefixRoots(leaves, sizes) {
  const wanted = new Set(sizes);
  const roots = new Map();
  if (wanted.has(0)) roots.set(0, toHex(await sha256()));
  const stack = [];
  for (let i = 0; i < leaves.length; i += 1) {
    let node = { size: 1, hash: await sha256(new Uint8Array([0]), leaves[i]) };
    while (stack.length > 0 && stack[stack.length - 1].size === node.size) {
      const left = stack.pop();
      node = { size: left.size * 2, hash: await sha256(new Uint8Array([1]), left.hash, node.hash) };
    }
    stack.push(node);
    if (wanted.has(i + 1)) {
      let root = stack[stack.length - 1].hash;
      for (let j = stack.length - 2; j >= 0; j -= 1) root = await sha256(new Uint8Array([1]), stack[j].hash, root);
      roots.set(i + 1, toHex(root));
    }
  }
  return roots;
}

// A contract read on chain: pallet-revive's `ReviveApi_call` dry run of an ink! message (its
// selector is the first four bytes of BLAKE2b-256 of its name) from the signed-in member,
// returning the SCALE bytes of the message's value, unwrapped from ink!'s `Result<T, LangError>`.
// The layout is `tclearn_client::Client::dry_run_call`'s: (origin, contract, value, no weight
// limit, no deposit limit, input) in; weights, deposits, gas, then `Result<(flags, data), _>` out.
async function readContract(api, contract, message, args = new Uint8Array()) {
  const input = u8aConcat(blake2AsU8a(message, 256).slice(0, 4), args);
  const call = u8aConcat(decodeAddress(session.address), hexToU8a(contract), new Uint8Array(16), [0, 0], compactAddLength(input));
  const out = (await api.rpc.state.call('ReviveApi_call', u8aToHex(call))).toU8a(true);
  let at = 0;
  const compact = () => { const [length, value] = compactFromU8a(out.subarray(at)); at += length; return value.toNumber(); };
  for (let i = 0; i < 4; i += 1) compact(); // weight consumed and required
  at += 17 + 17 + 16; // storage deposit, its maximum, gas consumed
  if (out[at] !== 0) throw new Error(`${message} on ${contract}: the dry run failed`);
  const reverted = (out[at + 1] & 1) !== 0;
  at += 5;
  const length = compact();
  const data = out.subarray(at, at + length);
  if (reverted || data.length !== length || data[0] !== 0) throw new Error(`${message} on ${contract} reverted`);
  return data.subarray(1);
}

function u64At(bytes, at) {
  if (bytes.length < at + 8) throw new Error('a contract answer shorter than its value');
  return new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true);
}
function u64Le(value) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), true);
  return bytes;
}

// The anchors on chain, oldest first, in the contract the coalition records (never the one the
// API names: its operator could anchor a rewritten log to a contract of its own); null if the
// coalition records none.
async function chainAnchors() {
  const api = await chain();
  const named = await readContract(api, coalition.address, 'audit_anchors');
  if (named[0] !== 1) return null;
  if (named.length < 21) throw new Error('a contract answer shorter than an address');
  const address = toHex(named.subarray(1, 21));
  const count = Number(u64At(await readContract(api, address, 'count'), 0));
  const anchors = [];
  for (let index = 0; index < count; index += 1) {
    const anchor = await readContract(api, address, 'get', u64Le(index));
    if (anchor[0] !== 1) throw new Error(`anchor ${index} of ${count} is missing`);
    if (anchor.length < 41) throw new Error(`anchor ${index}: a contract answer shorter than an anchor`);
    anchors.push({ root: toHex(anchor.subarray(1, 33)), logLength: Number(u64At(anchor, 33)) });
  }
  return { address, anchors };
}

// The served log (entries `0..size`) checked against every anchor on chain and the API's own
// checkpoint (read after the anchors, so that an anchor made meanwhile is within it); the
// verdict as HTML. The page is the API's, as are the coalition's address and the node it
// reads: this checks the log, not its operator (`tclearn audit verify` does, with receipts).
async function auditVerdict() {
  const verdict = (cls, text) => `<span id="audit-verdict" class="${cls}">${escape(text)}</span>`;
  const onChain = await chainAnchors();
  const checkpoint = await get('/api/audit/checkpoint');
  if (!onChain) return verdict('muted', 'the coalition records no audit-anchors contract');
  const { anchors } = onChain;
  if (anchors.length === 0) return verdict('muted', 'not anchored yet');
  const latest = anchors[anchors.length - 1];
  if (checkpoint.size < latest.logLength) {
    return verdict('bad', `the API serves ${checkpoint.size} entries, but the chain anchors ${latest.logLength}: the log was cut`);
  }
  const leaves = [];
  while (leaves.length < checkpoint.size) {
    const count = Math.min(1000, checkpoint.size - leaves.length);
    const page = await get(`/api/audit/entries?start=${leaves.length}&count=${count}`);
    if (page.entries.length === 0) break;
    for (const entry of page.entries) leaves.push(new TextEncoder().encode(entry));
  }
  if (leaves.length !== checkpoint.size) return verdict('bad', `the API serves ${leaves.length} of the ${checkpoint.size} entries it counts`);
  const roots = await prefixRoots(leaves, [...anchors.map((a) => a.logLength), checkpoint.size]);
  const broken = anchors.findIndex((a) => roots.get(a.logLength) !== a.root);
  if (broken >= 0) return verdict('bad', `the log does NOT match anchor ${broken} on chain (its first ${anchors[broken].logLength} entries)`);
  if (roots.get(checkpoint.size) !== checkpoint.root) return verdict('bad', 'the log does NOT match the API\'s own checkpoint');
  return verdict('ok', `verified against ${anchors.length} anchors on chain, the latest covering ${latest.logLength} entries`);
}

async function renderAudit() {
  let verdict;
  if (!session) {
    verdict = '<span id="audit-verdict" class="muted">sign in to check the log against the chain</span>';
  } else {
    verdict = await auditVerdict().catch((error) => `<span id="audit-verdict" class="bad">not checked: ${escape(error.message)}</span>`);
  }
  const checkpoint = await get('/api/audit/checkpoint');
  $('audit').innerHTML = `<p>${checkpoint.size} entries · root <code>${short(checkpoint.root)}</code></p><p>${verdict}</p>`;
}

function status(text, cls = 'muted') {
  $('status').className = cls;
  $('status').textContent = text;
}

async function connect() {
  const extensions = await web3Enable('TCLearn');
  if (extensions.length === 0) {
    status('No wallet found: install the polkadot.js extension, Talisman or SubWallet.', 'bad');
    return;
  }
  const accounts = await web3Accounts();
  $('account').innerHTML = accounts.map((a) => `<option value="${a.address}">${escape(a.meta.name || a.address)}</option>`).join('');
  $('sign-in').disabled = accounts.length === 0;
}

// The one message a member signs to sign in (`tclearn_api_client::sign_in`): every field is
// checked before the wallet is asked to sign, so that no API, and no one between it and this
// page, can have the member's key sign anything else.
const SIGN_IN = /^tclearn sign-in: api ([^,]+), coalition (0x[0-9a-f]{40}), account ([1-9A-HJ-NP-Za-km-z]+), nonce ([0-9a-f]{64}), expires ([1-9][0-9]*)$/;
const SIGN_IN_LIFETIME_MS = 10 * 60 * 1000;

function checkSignIn(challenge, address) {
  const fields = SIGN_IN.exec(challenge);
  if (!fields) throw new Error('the API sent something that is not a sign-in message: not signing it');
  const [, api, coalitionAddress, account, , expires] = fields;
  if (api !== window.location.origin) throw new Error(`the message names the API ${api}, not ${window.location.origin}: not signing it`);
  if (coalition && coalitionAddress !== coalition.address) throw new Error(`the message names the coalition ${coalitionAddress}, not ${coalition.address}: not signing it`);
  if (u8aToHex(decodeAddress(account)) !== u8aToHex(decodeAddress(address))) throw new Error('the message names another account: not signing it');
  const now = Date.now();
  if (!(Number(expires) > now && Number(expires) <= now + SIGN_IN_LIFETIME_MS)) throw new Error('the message does not expire within ten minutes: not signing it');
}

async function signIn() {
  const address = $('account').value;
  const injector = await web3FromAddress(address);
  const { challenge } = await post('/api/auth/challenge', { account: address });
  checkSignIn(challenge, address);
  const { signature } = await injector.signer.signRaw({ address, data: stringToHex(challenge), type: 'bytes' });
  const { token } = await post('/api/auth/token', { account: address, challenge, signature });
  session = { address, token };
  $('who').textContent = `signed in as ${short(address)}`;
  // The log is served to members only: check it now.
  await renderAudit().catch((error) => console.error(error));
}

async function chain() {
  if (!chainApi) chainApi = await ApiPromise.create({ provider: new WsProvider(coalition.node_rpc), noInitWarn: true });
  return chainApi;
}

// Submit `tx` signed by the member's wallet; resolves once in a block (or finalized: a node that
// finalizes each block at once may report only that), rejects on a dispatch error.
function submit(api, tx, address, signer) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(address, { signer }, ({ status: txStatus, dispatchError }) => {
      if (dispatchError) {
        const reason = dispatchError.isModule ? (({ section, name }) => `${section}.${name}`)(api.registry.findMetaError(dispatchError.asModule)) : dispatchError.toString();
        reject(new Error(reason));
      } else if (txStatus.isInBlock) {
        resolve(txStatus.asInBlock.toHex());
      } else if (txStatus.isFinalized) {
        resolve(txStatus.asFinalized.toHex());
      } else if (txStatus.isDropped || txStatus.isInvalid || txStatus.isUsurped) {
        reject(new Error(`the transaction was ${txStatus.type.toLowerCase()}`));
      }
    }).catch(reject);
  });
}

// Have the API prepare `message` (dry-run as this member), then sign and submit it.
async function act(message, args) {
  try {
    if (!session) throw new Error('sign in first');
    status(`preparing ${message}…`);
    const call = await post(`/api/calls/${message}`, args);
    // The wallet signs a call to the coalition only (the page knows its address from the
    // coalition view it reads at start), moving no funds.
    if (call.contract !== coalition.address) throw new Error(`the API built a call to ${call.contract}, not to the coalition: not signing it`);
    const api = await chain();
    const { signer } = await web3FromAddress(session.address);
    if (call.needs_mapping) {
      status('mapping your account for contracts (once)…');
      await submit(api, api.tx.revive.mapAccount(), session.address, signer);
    }
    status(`signing ${message}…`);
    const weight = { refTime: call.weight_ref_time, proofSize: call.weight_proof_size };
    const block = await submit(api, api.tx.revive.call(call.contract, 0, weight, call.storage_deposit_limit, call.call_data), session.address, signer);
    status(`${message} is in block ${short(block)}`, 'ok');
    await renderProposals();
  } catch (error) {
    status(`${message}: ${error.message}`, 'bad');
  }
}

async function refresh() {
  for (const render of [renderChain, renderRound, renderProposals, renderAudit]) {
    try { await render(); } catch (error) { console.error(error); }
  }
}

$('connect').onclick = () => connect().catch((e) => status(e.message, 'bad'));
$('sign-in').onclick = () => signIn().catch((e) => status(`sign-in: ${e.message}`, 'bad'));
refresh();
const events = new EventSource('/api/events');
let pending = null;
// Every contract event (`{block, name, data}`) may change what is shown: refresh, at most
// once per 300 ms burst.
events.onmessage = () => { clearTimeout(pending); pending = setTimeout(refresh, 300); };
