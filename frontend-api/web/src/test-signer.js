// A wallet for browser tests only: it injects itself as the polkadot.js extension interface
// (`window.injectedWeb3`) and signs with dev keys (`window.TCLEARN_TEST_ACCOUNTS`, secret URIs
// such as `//Charlie`). Never served by the API; the browser test adds it to the page.

import { Keyring } from '@polkadot/keyring';
import { blake2AsU8a, cryptoWaitReady } from '@polkadot/util-crypto';
import { hexToU8a, u8aToHex, u8aWrapBytes } from '@polkadot/util';

async function enable() {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const pairs = (window.TCLEARN_TEST_ACCOUNTS || ['//Charlie']).map((uri) => [uri, keyring.addFromUri(uri)]);
  const find = (address) => {
    const found = pairs.find(([, pair]) => pair.address === keyring.encodeAddress(address));
    if (!found) throw new Error(`no test key for ${address}`);
    return found[1];
  };
  const accounts = pairs.map(([uri, pair]) => ({ address: pair.address, name: uri, type: 'sr25519' }));
  let id = 0;
  return {
    accounts: { get: async () => accounts, subscribe: (cb) => { cb(accounts); return () => {}; } },
    signer: {
      // Bytes are signed wrapped in <Bytes>…</Bytes>, as the extension does (a bare 64-byte
      // signature); a transaction payload as @polkadot/api's own signing does (hashed when
      // longer than 256 bytes), as a MultiSignature (0x01: sr25519).
      signRaw: async ({ address, data, type }) => {
        const pair = find(address);
        const bytes = hexToU8a(data);
        id += 1;
        if (type === 'bytes') return { id, signature: u8aToHex(pair.sign(u8aWrapBytes(bytes))) };
        const message = bytes.length > 256 ? blake2AsU8a(bytes) : bytes;
        return { id, signature: u8aToHex(pair.sign(message, { withType: true })) };
      },
    },
  };
}

window.injectedWeb3 = window.injectedWeb3 || {};
window.injectedWeb3['tclearn-test-signer'] = { version: '0.1.0', enable };
