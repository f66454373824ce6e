import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'

/** The vendor's signing key: PEM (`\n` escapes allowed) or the base64 of its PKCS#8 DER on one line. */
export function parsePrivateKey(raw: string): KeyObject {
  const key = raw.includes('-----BEGIN')
    ? createPrivateKey(raw.replace(/\\n/g, '\n'))
    : createPrivateKey({ key: Buffer.from(raw.trim(), 'base64'), format: 'der', type: 'pkcs8' })
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`expected an Ed25519 private key, got a ${key.asymmetricKeyType ?? 'unknown'} key`)
  return key
}

/** A new Ed25519 key pair, each as the one-line base64 of its DER (PKCS#8, SPKI) and as PEM. */
export function generateSigningKeys(): { privateKey: string; publicKey: string; privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  }
}

/** The public key of a private one, as the base64 of its SPKI DER (CAT_LICENSE_PUBLIC_KEY). */
export function publicKeyOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64')
}

// Crockford's base32: no I, L, O, U, so a key read aloud or retyped is not misread.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A new licence key: `CAT-` and four groups of five base32 characters (100 random bits). */
export function generateLicenseKey(): string {
  const bytes = randomBytes(20)
  const chars = Array.from(bytes, (b) => ALPHABET[b % 32])
  return `CAT-${[0, 5, 10, 15].map((i) => chars.slice(i, i + 5).join('')).join('-')}`
}
