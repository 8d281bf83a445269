// Reproduce a tau-ops browser DID (KAMN) with WebCrypto only: no packages.
//
// The same code runs in a browser; only the argument parsing below is Node.
// Recipe: docs/guides/browser-did.md (profile kamn_did_ed25519_hkdf_sha256_v1).
//
//   node scripts/did/derive-did.mjs --method key --network tau-devnet \
//     --subject browser-agent --entropy-file FILE|- [--challenge TEXT]
//   (--entropy TEXT also works, but shows the secret in the process list)
//
// Prints one JSON object: method, network, subject, did, key_id, fingerprint,
// public_key_multibase, and signature (when --challenge is given).
// Exit status 2 with an "error:" line for bad input, 3 when WebCrypto lacks Ed25519.

const subtle = globalThis.crypto?.subtle;
const encoder = new TextEncoder();
const HKDF_SALT = encoder.encode("tau-ops/kamn/browser-did/v1");
const HKDF_INFO = encoder.encode("tau-ops kamn ed25519 seed v1");
// PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) up to the 32-byte seed.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const ED25519_PUB_CODEC = Uint8Array.from([0xed, 0x01]);
const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

export class InputError extends Error {}

export function base58btc(bytes) {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros += 1;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = "";
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  return "1".repeat(zeros) + out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function b64urlDecode(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

export function normalizeIdentifier(value, field) {
  const text = value.trim();
  if (!text) throw new InputError(`${field} must not be empty`);
  if (!/^[A-Za-z0-9._-]+$/.test(text)) throw new InputError(`${field} has characters outside [A-Za-z0-9._-]`);
  for (const segment of text.split(".")) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/.test(segment)) {
      throw new InputError(`${field} segment ${JSON.stringify(segment)} must start and end alphanumeric`);
    }
  }
  return text.toLowerCase();
}

export function normalizeMethod(value) {
  const text = value.trim().toLowerCase();
  if (text !== "key" && text !== "web") throw new InputError("method must be key or web");
  return text;
}

// Each part: 4-byte big-endian length, then its bytes (method, network, subject, entropy).
export function derivationInput(method, network, subject, entropy) {
  const parts = [method, network, subject].map((s) => encoder.encode(s));
  parts.push(typeof entropy === "string" ? encoder.encode(entropy) : entropy);
  return concat(
    ...parts.flatMap((p) => {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, p.length, false);
      return [len, p];
    }),
  );
}

export async function deriveDid({ method, network, subject, entropy, challenge }) {
  const m = normalizeMethod(method);
  const net = normalizeIdentifier(network, "network");
  const sub = normalizeIdentifier(subject, "subject");
  const entropyBytes = typeof entropy === "string" ? encoder.encode(entropy) : entropy;
  // Refused when empty or only ASCII whitespace; otherwise used verbatim.
  if (!entropyBytes || entropyBytes.every((b) => [9, 10, 11, 12, 13, 32].includes(b))) {
    throw new InputError("entropy must not be empty");
  }
  const ikm = await subtle.importKey("raw", derivationInput(m, net, sub, entropyBytes), "HKDF", false, [
    "deriveBits",
  ]);
  const seed = new Uint8Array(
    await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: HKDF_INFO }, ikm, 256),
  );
  const privateKey = await subtle.importKey("pkcs8", concat(PKCS8_ED25519_PREFIX, seed), { name: "Ed25519" }, true, [
    "sign",
  ]);
  const publicKey = b64urlDecode((await subtle.exportKey("jwk", privateKey)).x);
  const multibase = "z" + base58btc(concat(ED25519_PUB_CODEC, publicKey));
  const did = m === "key" ? `did:key:${multibase}` : `did:web:${net.replaceAll(".", ":")}:${sub}`;
  const keyId = m === "key" ? `${did}#${multibase}` : `${did}#primary`;
  const digest = new Uint8Array(await subtle.digest("SHA-256", publicKey));
  const result = {
    method: m,
    network: net,
    subject: sub,
    did,
    key_id: keyId,
    fingerprint: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
    public_key_multibase: multibase,
  };
  if (challenge !== undefined) {
    const sig = new Uint8Array(await subtle.sign({ name: "Ed25519" }, privateKey, encoder.encode(challenge)));
    result.signature = "z" + base58btc(sig);
  }
  return result;
}

async function hasEd25519() {
  try {
    await subtle.generateKey({ name: "Ed25519" }, false, ["sign"]);
    return true;
  } catch {
    return false;
  }
}

// The entropy from a file ("-" = standard input), as tau-ops reads it: bytes verbatim
// except one trailing line end, so a secret never has to appear in the process list.
async function readEntropy(path) {
  const { readFileSync } = await import("node:fs");
  const raw = new Uint8Array(readFileSync(path === "-" ? 0 : path));
  if (raw.length > 65536) throw new Error("over the 65536-byte limit");
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end -= 1;
  if (end > 0 && end < raw.length && raw[end - 1] === 0x0d) end -= 1;
  return raw.subarray(0, end);
}

async function main(argv) {
  if (!subtle || !(await hasEd25519())) {
    console.error("error: this runtime's WebCrypto has no Ed25519");
    return 3;
  }
  const opts = { method: "key", network: "tau-devnet", subject: "browser-agent" };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    const known = ["method", "network", "subject", "entropy", "entropy-file", "challenge"];
    if (!known.includes(name) || i + 1 >= argv.length) {
      console.error(`error: unknown or incomplete option ${argv[i]}`);
      return 2;
    }
    opts[name] = argv[i + 1];
  }
  if (opts["entropy-file"] !== undefined) {
    if (opts.entropy !== undefined) {
      console.error("error: pass one of --entropy and --entropy-file, not both");
      return 2;
    }
    try {
      opts.entropy = await readEntropy(opts["entropy-file"]);
    } catch (err) {
      console.error(`error: cannot read entropy file ${opts["entropy-file"]}: ${err.message}`);
      return 2;
    }
  }
  if (opts.entropy === undefined) {
    console.error("error: --entropy-file (or --entropy) is required");
    return 2;
  }
  try {
    console.log(JSON.stringify(await deriveDid(opts)));
    return 0;
  } catch (err) {
    if (err instanceof InputError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

// Run as a script under Node; stay a plain module when imported (e.g. in a browser).
const invoked = globalThis.process?.argv?.[1];
if (invoked && import.meta.url === new URL(invoked, "file://").href) {
  process.exitCode = await main(process.argv.slice(2));
}
