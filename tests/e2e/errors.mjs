// XRPC error answers, Aurora against the reference PDS (@atproto/pds): the same request goes to
// both servers, with equivalent accounts on each, and the answers are compared (HTTP status and
// `error` name strictly; messages, normalised, shown side by side).
//
// Usage: node errors.mjs <aurora-locus binary> <reference PDS url>
//   The reference runner (../shared/reference-pds, copied, set up and started with start.sh)
//   serves PLC on localhost:$REFERENCE_PLC_PORT (2582); Aurora is started here on that same PLC.
//   REFERENCE_RUNNER (default /tmp/refpds) is the runner's directory: its data/run/env.txt gives
//   the reference's JWT secret (to forge tokens), admin password, AppView and blob limit, and its
//   data/run/account.sqlite the mailed codes.
//   Start the reference as CI does, with an AppView configured (it serves app.bsky.actor
//   preferences only then; the AppView itself need not run): Aurora is given the same AppView,
//   admin password, handle domains and blob limit, so both sides are set up alike.
//   ERRORS_JSON=<file> also writes every answer there as JSON.
// Prints `same`, `known` or `DIFF` per case with both answers and a final "N same, M differ". Exits
// non-zero on any DIFF, and on a KNOWN entry that no longer differs: KNOWN lists the accepted
// differences, each with its reason. Also exits non-zero when Aurora answers a status or error
// name that its own /openapi.json does not list for the method (UNDOCUMENTED).
import { createHmac, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { startAurora, lastMailedCode, expiredAccessToken } from './harness.mjs'

const referenceUrl = (process.argv[3] ?? `http://localhost:${process.env.REFERENCE_PDS_PORT ?? 2583}`).replace(/\/$/, '')
const plcUrl = `http://localhost:${process.env.REFERENCE_PLC_PORT ?? 2582}`
const runner = process.env.REFERENCE_RUNNER ?? '/tmp/refpds'

/**
 * Accepted differences: case name → why Aurora answers otherwise. Everything else must match the
 * reference exactly (status and error name); a listed case that starts matching must be removed.
 */
const REF_500 = 'the reference fails with a 500 here; Aurora answers the client error'
const NOT_XRPC = 'the reference answers with a JavaScript exception name, not an XRPC error name'
const FORWARDED = 'the reference forwards this method to the AppView; Aurora answers it itself'
const CODES = 'Aurora refuses a second mailed code within 30 s (no flooding of inboxes); the reference sends one'
const DELETED_STORE = "a deleted account's token: the reference fails to open the account's store (NotFound); Aurora answers from the database"
const CODE_FIRST =
  'Aurora checks the mailed code before the password, so a wrong code never tells whether the password was right; the reference checks the password first'
const KNOWN = {
  'com.atproto.server.checkAccountStatus: access token of a deleted account': DELETED_STORE,
  'com.atproto.repo.listMissingBlobs: access token of a deleted account': DELETED_STORE,
  'app.bsky.actor.getPreferences: token for an unknown DID': DELETED_STORE,
  'app.bsky.actor.getPreferences: access token of a deleted account': DELETED_STORE,
  'com.atproto.server.activateAccount: access token of a deleted account': REF_500,
  'com.atproto.repo.uploadBlob: bearer garbage (not a JWT)': REF_500,
  'com.atproto.server.createAppPassword: duplicate name': REF_500,
  'com.atproto.repo.createRecord: existing rkey': REF_500,
  'com.atproto.repo.applyWrites: delete of a missing record': REF_500,
  'com.atproto.repo.applyWrites: update of a missing record': REF_500,
  'com.atproto.repo.applyWrites: create at an existing rkey': REF_500,
  'com.atproto.repo.applyWrites: two writes to one rkey': REF_500,
  'com.atproto.repo.importRepo: not a CAR': REF_500,
  'com.atproto.repo.importRepo: empty body': REF_500,
  'atproto-proxy header for a DID that does not resolve': REF_500,
  'com.atproto.server.createSession: body is not JSON': NOT_XRPC,
  'com.atproto.server.createSession: body is JSON null': NOT_XRPC,
  'com.atproto.server.createSession: JSON body over 150 KB': NOT_XRPC,
  'com.atproto.repo.createRecord: JSON body of 2 MB': NOT_XRPC,
  'app.bsky.actor.putPreferences: body is not JSON': NOT_XRPC,
  'com.atproto.server.createAccount: disposable-looking email domain':
    'the reference refuses disposable-mail domains from an npm list; Aurora has no such list yet',
  'com.atproto.server.createAccount: missing password':
    'the reference creates an account nobody can sign in to (for an entryway); Aurora asks for a password',
  'com.atproto.server.requestPasswordReset: unknown email':
    'the reference says whether an address has an account; Aurora answers alike either way',
  'com.atproto.server.requestPasswordReset: deleted account':
    'the reference says whether an address has an account; Aurora answers alike either way',
  'com.atproto.server.createAppPassword: empty name': 'Aurora asks for a name of 1 to 100 characters',
  'com.atproto.server.createAppPassword: name over 100 chars': 'Aurora asks for a name of 1 to 100 characters',
  'com.atproto.server.requestEmailUpdate: again at once': CODES,
  'com.atproto.server.requestPasswordReset: again at once': CODES,
  'com.atproto.server.requestAccountDelete: twice at once (2)': CODES,
  'com.atproto.identity.resolveDid: unknown DID': FORWARDED,
  'com.atproto.identity.resolveDid: invalid DID': FORWARDED,
  'com.atproto.identity.resolveDid: missing did': FORWARDED,
  'com.atproto.identity.resolveDid: with a session': FORWARDED,
  'com.atproto.identity.resolveIdentity: unknown handle': FORWARDED,
  'com.atproto.identity.resolveIdentity: invalid identifier': FORWARDED,
  'com.atproto.identity.refreshIdentity: no auth': FORWARDED,
  'com.atproto.identity.refreshIdentity: unknown DID': FORWARDED,
  'com.atproto.repo.getRecord: unknown repo DID': FORWARDED,
  'com.atproto.repo.getRecord: unknown repo handle': FORWARDED,
  "com.atproto.repo.getRecord: deactivated account's record": FORWARDED,
  "com.atproto.repo.getRecord: deleted account's record": FORWARDED,
  'com.atproto.repo.putRecord: swapRecord mismatch, record unchanged':
    'the reference skips the swap check when the record would not change; Aurora checks the swap first, as its lexicon says',
  'com.atproto.sync.subscribeRepos: plain HTTP GET': 'the reference falls through to its proxy; Aurora asks for a websocket',
  'com.atproto.sync.subscribeRepos: plain HTTP GET with a future cursor':
    'the reference falls through to its proxy; Aurora asks for a websocket',
  'com.atproto.sync.subscribeRepos: plain HTTP GET with a session':
    'the reference falls through to its proxy; Aurora asks for a websocket',
  'com.atproto.sync.subscribeRepos: POST': 'the reference falls through to its proxy; Aurora names the HTTP method',
  'com.atproto.server.deleteAccount: wrong password': CODE_FIRST,
  'com.atproto.server.deleteAccount: app password instead of the password': CODE_FIRST,
}
// A revoked app password's access tokens: the reference honours them until they expire.
for (const nsid of ['com.atproto.server.getSession', 'com.atproto.server.getServiceAuth', 'com.atproto.identity.updateHandle',
  'com.atproto.repo.createRecord', 'com.atproto.repo.uploadBlob', 'app.bsky.actor.getPreferences']) {
  KNOWN[`${nsid}: access token of a revoked app password`] =
    "Aurora refuses a revoked app password's access tokens at once (ExpiredToken, so clients refresh and find the session gone); the reference honours them until they expire"
}

// ---------------------------------------------------------------------------------------------
// The reference's configuration, read from its runner.

function readEnvFile(path) {
  const env = {}
  if (!existsSync(path)) return env
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return env
}
const refEnv = readEnvFile(join(runner, 'data/run/env.txt'))
if (!refEnv.PDS_JWT_SECRET) {
  console.error(`no reference env at ${join(runner, 'data/run/env.txt')}: set REFERENCE_RUNNER to the started runner`)
  process.exit(2)
}
const adminPassword = refEnv.PDS_ADMIN_PASSWORD ?? 'admin-pass'
const blobLimit = Number(refEnv.PDS_BLOB_UPLOAD_LIMIT ?? 5242880)

const Database = createRequire(join(runner, 'package.json'))('better-sqlite3')
function referenceCode(did, purpose) {
  const db = new Database(join(runner, 'data/run/account.sqlite'), { readonly: true })
  try {
    const row = db.prepare('select token from email_token where did = ? and purpose = ?').get(did, purpose)
    if (!row) throw new Error(`no ${purpose} token for ${did} in the reference's database`)
    return row.token
  } finally {
    db.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Requests.

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
function hs256(header, payload, secret) {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const NOBODY = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' // well-formed, registered nowhere
const MISSING_CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' // a dag-cbor CID nothing stores
const MISSING_RAW_CID = 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy'
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('error-case pixels')])

/**
 * Sends one request. `spec`: { method, nsid | path, params, auth (the whole Authorization
 * value), headers, json (sent as application/json), body (Buffer/string as is), contentType }.
 */
async function send(server, spec) {
  const url = new URL(spec.path ?? `/xrpc/${spec.nsid}`, server.url)
  for (const [k, v] of Object.entries(spec.params ?? {})) {
    if (v === undefined) continue
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one))
  }
  const headers = { ...(spec.headers ?? {}) }
  if (spec.auth != null) headers.authorization = spec.auth
  let body
  if (spec.json !== undefined) {
    body = Buffer.from(JSON.stringify(spec.json))
    headers['content-type'] = 'application/json'
  } else if (spec.body !== undefined) {
    body = Buffer.isBuffer(spec.body) ? spec.body : Buffer.from(spec.body)
  }
  if (spec.contentType !== undefined) {
    if (spec.contentType === null) delete headers['content-type']
    else headers['content-type'] = spec.contentType
  }
  const method = spec.method ?? (body !== undefined ? 'POST' : 'GET')
  try {
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(spec.timeout ?? 15_000) })
    const text = method === 'HEAD' ? '' : await res.text()
    let json = null
    try {
      json = JSON.parse(text)
    } catch {}
    const isError = res.status >= 400 && json && typeof json === 'object'
    return {
      status: res.status,
      error: isError ? (json.error ?? null) : null,
      message: isError ? (json.message ?? null) : null,
      body: isError ? undefined : text.slice(0, 160),
      contentType: res.headers.get('content-type'),
    }
  } catch (err) {
    return { status: 0, error: `(${err.name})`, message: String(err.message ?? err) }
  }
}

/** Setup calls: throw on anything but 2xx. */
async function call(server, method, nsid, { params, json, body, contentType, auth } = {}) {
  const url = new URL(`/xrpc/${nsid}`, server.url)
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) url.searchParams.append(k, String(v))
  const headers = {}
  if (auth) headers.authorization = auth
  if (json !== undefined) {
    body = JSON.stringify(json)
    headers['content-type'] = 'application/json'
  } else if (contentType) headers['content-type'] = contentType
  const res = await fetch(url, { method, headers, body })
  const text = await res.text()
  if (!res.ok) throw new Error(`${server.name} ${nsid}: ${res.status} ${text}`)
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

// ---------------------------------------------------------------------------------------------
// Equivalent accounts on both servers.

const suffix = randomBytes(3).toString('hex')
const handleOf = (name) => `${name}-${suffix}.test`
const emailOf = (name) => `${name}-${suffix}@example.com`
const passwordOf = (name) => `${name}-password-${suffix}`
const POST = (text = 'hello') => ({ $type: 'app.bsky.feed.post', text, createdAt: '2024-01-01T00:00:00.000Z' })

async function setUp(server) {
  const s = server
  s.users = {}
  const bearer = (t) => `Bearer ${t}`
  s.bearer = (name, kind = 'access') => bearer(s.users[name][kind])
  const describe = await call(s, 'GET', 'com.atproto.server.describeServer')
  s.serviceDid = describe.did

  async function account(name) {
    const out = await call(s, 'POST', 'com.atproto.server.createAccount', {
      json: { handle: handleOf(name), email: emailOf(name), password: passwordOf(name) },
    })
    const u = { name, did: out.did, handle: handleOf(name), access: out.accessJwt, refresh: out.refreshJwt }
    s.users[name] = u
    return u
  }
  async function appPasswordSession(u, name, privileged) {
    const { password } = await call(s, 'POST', 'com.atproto.server.createAppPassword', {
      json: { name, privileged }, auth: bearer(u.access),
    })
    const sess = await call(s, 'POST', 'com.atproto.server.createSession', { json: { identifier: u.handle, password } })
    return { access: sess.accessJwt, refresh: sess.refreshJwt, password }
  }

  // alice: the main account, with records, a blob, a confirmed email and app-password sessions.
  const alice = await account('alice')
  const auth = bearer(alice.access)
  const app = await appPasswordSession(alice, 'app', false)
  alice.appAccess = app.access
  alice.appRefresh = app.refresh
  alice.appPassword = app.password
  const priv = await appPasswordSession(alice, 'priv', true)
  alice.privAccess = priv.access
  const gone = await appPasswordSession(alice, 'gone', false)
  alice.goneAccess = gone.access
  alice.goneRefresh = gone.refresh
  await call(s, 'POST', 'com.atproto.server.revokeAppPassword', { json: { name: 'gone' }, auth })
  const rec = await call(s, 'POST', 'com.atproto.repo.createRecord', {
    json: { repo: alice.did, collection: 'app.bsky.feed.post', record: POST() }, auth,
  })
  alice.postRkey = rec.uri.split('/').pop()
  alice.postCid = rec.cid
  const blob = await call(s, 'POST', 'com.atproto.repo.uploadBlob', { body: PNG, contentType: 'image/png', auth })
  alice.blobCid = blob.blob.ref.$link
  await call(s, 'POST', 'com.atproto.repo.createRecord', {
    json: {
      repo: alice.did,
      collection: 'app.bsky.feed.post',
      record: { ...POST('with image'), embed: { $type: 'app.bsky.embed.images', images: [{ image: blob.blob, alt: 'x' }] } },
    },
    auth,
  })
  await call(s, 'POST', 'com.atproto.server.requestEmailConfirmation', { auth })
  await call(s, 'POST', 'com.atproto.server.confirmEmail', {
    json: { email: emailOf('alice'), token: s.code(alice.did, 'confirm_email') }, auth,
  })
  const svc = async (aud, lxm, exp) =>
    (await call(s, 'GET', 'com.atproto.server.getServiceAuth', { params: { aud, lxm, ...(exp ? { exp } : {}) }, auth })).token
  alice.svcUploadBlob = await svc(s.serviceDid, 'com.atproto.repo.uploadBlob')
  alice.svcCreateAccount = await svc(s.serviceDid, 'com.atproto.server.createAccount')
  alice.svcWrongAud = await svc('did:web:elsewhere.example', 'com.atproto.server.createAccount')
  alice.svcNoLxm = await svc(s.serviceDid)

  // Forged and mistyped tokens for alice, signed with this server's own secret unless said.
  const claims = { scope: 'com.atproto.access', aud: s.serviceDid, sub: alice.did, iat: now(), exp: now() + 3600 }
  alice.forged = hs256({ typ: 'at+jwt', alg: 'HS256' }, claims, 'not-the-server-secret')
  alice.expired = expiredAccessToken(s.jwtSecret, alice.did)
  alice.wrongTyp = hs256({ typ: 'JWT', alg: 'HS256' }, claims, s.jwtSecret)
  alice.noTyp = hs256({ alg: 'HS256' }, claims, s.jwtSecret)
  alice.wrongAud = hs256({ typ: 'at+jwt', alg: 'HS256' }, { ...claims, aud: 'did:web:elsewhere.example' }, s.jwtSecret)
  alice.badScope = hs256({ typ: 'at+jwt', alg: 'HS256' }, { ...claims, scope: 'com.atproto.bogus' }, s.jwtSecret)
  alice.refreshScope = hs256({ typ: 'at+jwt', alg: 'HS256' }, { ...claims, scope: 'com.atproto.refresh' }, s.jwtSecret)
  alice.noSub = hs256({ typ: 'at+jwt', alg: 'HS256' }, { ...claims, sub: undefined }, s.jwtSecret)
  alice.unknownSub = hs256({ typ: 'at+jwt', alg: 'HS256' }, { ...claims, sub: NOBODY }, s.jwtSecret)
  alice.algNone = `${b64url({ typ: 'at+jwt', alg: 'none' })}.${b64url(claims)}.`
  alice.expiredRefresh = hs256(
    { typ: 'refresh+jwt', alg: 'HS256' },
    { scope: 'com.atproto.refresh', aud: s.serviceDid, sub: alice.did, jti: 'made-up-token-id', iat: now() - 7200, exp: now() - 3600 },
    s.jwtSecret,
  )
  alice.unknownJti = hs256(
    { typ: 'refresh+jwt', alg: 'HS256' },
    { scope: 'com.atproto.refresh', aud: s.serviceDid, sub: alice.did, jti: 'made-up-token-id', iat: now(), exp: now() + 3600 },
    s.jwtSecret,
  )
  alice.noJti = hs256(
    { typ: 'refresh+jwt', alg: 'HS256' },
    { scope: 'com.atproto.refresh', aud: s.serviceDid, sub: alice.did, iat: now(), exp: now() + 3600 },
    s.jwtSecret,
  )

  // bob: another user, with a record.
  const bob = await account('bob')
  const bobRec = await call(s, 'POST', 'com.atproto.repo.createRecord', {
    json: { repo: bob.did, collection: 'app.bsky.feed.post', record: POST('bob') }, auth: bearer(bob.access),
  })
  bob.postRkey = bobRec.uri.split('/').pop()
  bob.postCid = bobRec.cid // bob's repository is never written to again: his blocks stay

  // carol: a second session, then deleteSession on it.
  const carol = await account('carol')
  const second = await call(s, 'POST', 'com.atproto.server.createSession', { json: { identifier: carol.handle, password: passwordOf('carol') } })
  await call(s, 'POST', 'com.atproto.server.deleteSession', { auth: bearer(second.refreshJwt) })
  carol.deletedRefresh = second.refreshJwt
  carol.deletedAccess = second.accessJwt

  // dave: deactivated.
  const dave = await account('dave')
  await call(s, 'POST', 'com.atproto.repo.createRecord', {
    json: { repo: dave.did, collection: 'app.bsky.feed.post', record: POST('dave') }, auth: bearer(dave.access),
  })
  await call(s, 'POST', 'com.atproto.server.deactivateAccount', { json: {}, auth: bearer(dave.access) })

  // erin and gwen: an app-password session each (plain, privileged) for the methods that may
  // refuse them, on accounts of their own so an accepted call changes nothing else.
  const erin = await account('erin')
  erin.appAccess = (await appPasswordSession(erin, 'app', false)).access
  const gwen = await account('gwen')
  gwen.privAccess = (await appPasswordSession(gwen, 'priv', true)).access

  // frank: deleted, with his tokens kept.
  const frank = await account('frank')
  await call(s, 'POST', 'com.atproto.server.requestAccountDelete', { auth: bearer(frank.access) })
  await call(s, 'POST', 'com.atproto.server.deleteAccount', {
    json: { did: frank.did, password: passwordOf('frank'), token: s.code(frank.did, 'delete_account') },
  })

  // Normalisation: this server's DIDs, URL and the like become placeholders.
  s.replacements = [[s.url, '<url>']]
  for (const u of Object.values(s.users)) s.replacements.push([u.did, `<${u.name}.did>`])
}

// ---------------------------------------------------------------------------------------------
// The cases. Each `request(s)` builds the request for server `s` (its own DIDs and tokens).

const q = (nsid, params, extra = {}) => ({ method: 'GET', nsid, params, ...extra })
const p = (nsid, json, extra = {}) => ({ method: 'POST', nsid, json, ...extra })
const cases = []
const add = (name, request) => cases.push({ name, request })

// Authenticated methods, each with a request that would succeed (or fail harmlessly) with a
// valid full session; the auth matrix below varies only the Authorization header.
const authed = [
  ['com.atproto.server.getSession', () => q('com.atproto.server.getSession')],
  ['com.atproto.server.checkAccountStatus', () => q('com.atproto.server.checkAccountStatus')],
  ['com.atproto.server.getAccountInviteCodes', () => q('com.atproto.server.getAccountInviteCodes')],
  ['com.atproto.server.listAppPasswords', () => q('com.atproto.server.listAppPasswords')],
  ['com.atproto.server.createAppPassword', () => p('com.atproto.server.createAppPassword', { name: 'never-created' })],
  ['com.atproto.server.revokeAppPassword', () => p('com.atproto.server.revokeAppPassword', { name: 'no-such-password' })],
  ['com.atproto.server.getServiceAuth', (s) => q('com.atproto.server.getServiceAuth', { aud: s.serviceDid })],
  ['com.atproto.server.requestEmailConfirmation', () => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailConfirmation' })],
  ['com.atproto.server.confirmEmail', () => p('com.atproto.server.confirmEmail', { email: emailOf('alice'), token: 'AAAAA-AAAAA' })],
  ['com.atproto.server.requestEmailUpdate', () => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailUpdate' })],
  ['com.atproto.server.updateEmail', () => p('com.atproto.server.updateEmail', { email: emailOf('alice'), token: 'AAAAA-AAAAA' })],
  ['com.atproto.server.requestAccountDelete', () => ({ method: 'POST', nsid: 'com.atproto.server.requestAccountDelete' })],
  ['com.atproto.server.deactivateAccount', () => p('com.atproto.server.deactivateAccount', {})],
  ['com.atproto.server.activateAccount', () => ({ method: 'POST', nsid: 'com.atproto.server.activateAccount' })],
  ['com.atproto.identity.updateHandle', () => p('com.atproto.identity.updateHandle', { handle: handleOf('alice') })],
  ['com.atproto.identity.getRecommendedDidCredentials', () => q('com.atproto.identity.getRecommendedDidCredentials')],
  ['com.atproto.identity.requestPlcOperationSignature', () => ({ method: 'POST', nsid: 'com.atproto.identity.requestPlcOperationSignature' })],
  ['com.atproto.identity.signPlcOperation', () => p('com.atproto.identity.signPlcOperation', { token: 'AAAAA-AAAAA' })],
  ['com.atproto.identity.submitPlcOperation', () => p('com.atproto.identity.submitPlcOperation', { operation: { type: 'plc_operation' } })],
  ['com.atproto.repo.createRecord', (s) => p('com.atproto.repo.createRecord', { repo: s.users.alice.did, collection: 'app.bsky.feed.post', record: POST() })],
  ['com.atproto.repo.putRecord', (s) => p('com.atproto.repo.putRecord', { repo: s.users.alice.did, collection: 'app.bsky.feed.post', rkey: s.users.alice.postRkey, record: POST() })],
  ['com.atproto.repo.deleteRecord', (s) => p('com.atproto.repo.deleteRecord', { repo: s.users.alice.did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' })],
  ['com.atproto.repo.applyWrites', (s) => p('com.atproto.repo.applyWrites', { repo: s.users.alice.did, writes: [] })],
  ['com.atproto.repo.uploadBlob', () => ({ method: 'POST', nsid: 'com.atproto.repo.uploadBlob', body: PNG, contentType: 'image/png' })],
  ['com.atproto.repo.importRepo', () => ({ method: 'POST', nsid: 'com.atproto.repo.importRepo', body: Buffer.from('not a car'), contentType: 'application/vnd.ipld.car' })],
  ['com.atproto.repo.listMissingBlobs', () => q('com.atproto.repo.listMissingBlobs')],
  ['com.atproto.temp.checkSignupQueue', () => q('com.atproto.temp.checkSignupQueue')],
  ['com.atproto.moderation.createReport', (s) => p('com.atproto.moderation.createReport', { reasonType: 'com.atproto.moderation.defs#reasonSpam', subject: { $type: 'com.atproto.admin.defs#repoRef', did: s.users.bob.did } })],
  ['app.bsky.actor.getPreferences', () => q('app.bsky.actor.getPreferences')],
  ['app.bsky.actor.putPreferences', () => p('app.bsky.actor.putPreferences', { preferences: [] })],
]
const alice = (s) => s.users.alice
const authVariants = [
  ['no Authorization header', () => null],
  ['empty Authorization header', () => ''],
  ['"Bearer" with no token', () => 'Bearer'],
  ['"Bearer " with an empty token', () => 'Bearer '],
  ['"Bearer a b" (three parts)', () => 'Bearer a b'],
  ['lower-case "bearer" scheme', (s) => `bearer ${alice(s).access}`],
  ['Basic scheme (admin credentials)', () => `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}`],
  ['unknown scheme "Token"', (s) => `Token ${alice(s).access}`],
  ['DPoP scheme with a session token', (s) => `DPoP ${alice(s).access}`],
  ['bearer garbage (not a JWT)', () => 'Bearer not-a-jwt'],
  ['forged token (wrong secret)', (s) => `Bearer ${alice(s).forged}`],
  ['expired access token', (s) => `Bearer ${alice(s).expired}`],
  ['refresh token as access token', (s) => `Bearer ${alice(s).refresh}`],
  ['token with typ JWT', (s) => `Bearer ${alice(s).wrongTyp}`],
  ['token without typ', (s) => `Bearer ${alice(s).noTyp}`],
  ['token for another audience', (s) => `Bearer ${alice(s).wrongAud}`],
  ['token with an unknown scope', (s) => `Bearer ${alice(s).badScope}`],
  ['at+jwt token with the refresh scope', (s) => `Bearer ${alice(s).refreshScope}`],
  ['token without sub', (s) => `Bearer ${alice(s).noSub}`],
  ['token for an unknown DID', (s) => `Bearer ${alice(s).unknownSub}`],
  ['alg none token', (s) => `Bearer ${alice(s).algNone}`],
  ['service-auth token as access token', (s) => `Bearer ${alice(s).svcNoLxm}`],
  ['access token of a deleted account', (s) => s.bearer('frank')],
  ['access token of a revoked app password', (s) => `Bearer ${alice(s).goneAccess}`],
]
// The full matrix on every authenticated method would be long; the cheap, header-level variants
// go everywhere, the rest on a representative set.
const everywhere = new Set([
  'no Authorization header', 'Basic scheme (admin credentials)', 'bearer garbage (not a JWT)', 'forged token (wrong secret)',
  'expired access token', 'refresh token as access token', 'service-auth token as access token', 'access token of a deleted account',
])
const representative = new Set([
  'com.atproto.server.getSession', 'com.atproto.repo.createRecord', 'com.atproto.repo.uploadBlob', 'app.bsky.actor.getPreferences',
  'com.atproto.server.getServiceAuth', 'com.atproto.identity.updateHandle',
])
for (const [nsid, build] of authed) {
  for (const [variant, header] of authVariants) {
    if (!everywhere.has(variant) && !representative.has(nsid)) continue
    add(`${nsid}: ${variant}`, (s) => ({ ...build(s), auth: header(s) }))
  }
}

// Sessions and refresh tokens.
for (const nsid of ['com.atproto.server.refreshSession', 'com.atproto.server.deleteSession']) {
  add(`${nsid}: no Authorization header`, () => ({ method: 'POST', nsid }))
  add(`${nsid}: Basic scheme`, () => ({ method: 'POST', nsid, auth: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` }))
  add(`${nsid}: bearer garbage`, () => ({ method: 'POST', nsid, auth: 'Bearer not-a-jwt' }))
  add(`${nsid}: access token instead of refresh`, (s) => ({ method: 'POST', nsid, auth: s.bearer('alice') }))
  add(`${nsid}: app-password access token`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${alice(s).appAccess}` }))
  add(`${nsid}: forged refresh token (wrong secret)`, (s) => ({
    method: 'POST', nsid,
    auth: `Bearer ${hs256({ typ: 'refresh+jwt', alg: 'HS256' }, { scope: 'com.atproto.refresh', aud: s.serviceDid, sub: alice(s).did, jti: 'x', iat: now(), exp: now() + 3600 }, 'wrong')}`,
  }))
  add(`${nsid}: expired refresh token`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${alice(s).expiredRefresh}` }))
  add(`${nsid}: refresh token with an unknown id`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${alice(s).unknownJti}` }))
  add(`${nsid}: refresh token without jti`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${alice(s).noJti}` }))
  add(`${nsid}: refresh token after deleteSession`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${s.users.carol.deletedRefresh}` }))
  add(`${nsid}: refresh token of a revoked app password`, (s) => ({ method: 'POST', nsid, auth: `Bearer ${alice(s).goneRefresh}` }))
  add(`${nsid}: refresh token of a deleted account`, (s) => ({ method: 'POST', nsid, auth: s.bearer('frank', 'refresh') }))
  add(`${nsid}: GET instead of POST`, (s) => ({ method: 'GET', nsid, auth: s.bearer('bob', 'refresh') }))
}
add('com.atproto.server.getSession: access token after its session was deleted', (s) => q('com.atproto.server.getSession', {}, { auth: `Bearer ${s.users.carol.deletedAccess}` }))
add('com.atproto.server.getSession: deactivated account', (s) => q('com.atproto.server.getSession', {}, { auth: s.bearer('dave') }))
add('com.atproto.server.refreshSession: deactivated account', (s) => ({ method: 'POST', nsid: 'com.atproto.server.refreshSession', auth: s.bearer('dave', 'refresh') }))

// App-password sessions on the methods that may refuse them (erin: plain, gwen: privileged).
const appPasswordMethods = [
  'com.atproto.server.createAppPassword', 'com.atproto.server.listAppPasswords', 'com.atproto.server.revokeAppPassword',
  'com.atproto.identity.updateHandle', 'com.atproto.identity.submitPlcOperation', 'com.atproto.identity.signPlcOperation',
  'com.atproto.identity.requestPlcOperationSignature', 'com.atproto.identity.getRecommendedDidCredentials',
  'com.atproto.server.confirmEmail', 'com.atproto.server.requestEmailConfirmation', 'com.atproto.server.requestEmailUpdate',
  'com.atproto.server.updateEmail', 'com.atproto.server.requestAccountDelete', 'com.atproto.repo.importRepo',
  'com.atproto.server.getAccountInviteCodes', 'com.atproto.server.checkAccountStatus', 'com.atproto.server.getSession',
  'com.atproto.server.getServiceAuth', 'com.atproto.temp.checkSignupQueue', 'com.atproto.repo.listMissingBlobs',
  'app.bsky.actor.getPreferences', 'app.bsky.actor.putPreferences',
  // last: an accepted call changes the account's state
  'com.atproto.server.activateAccount', 'com.atproto.server.deactivateAccount',
]
const forUser = (nsid, name) => (s) => {
  const spec = authed.find(([n]) => n === nsid)[1](s)
  // the bodies name alice; point them at the session's own account
  const json = spec.json && JSON.parse(JSON.stringify(spec.json).replaceAll(emailOf('alice'), emailOf(name)).replaceAll(handleOf('alice'), handleOf(name)))
  return { ...spec, ...(json ? { json } : {}) }
}
for (const [who, kind, label] of [['erin', 'appAccess', 'app password'], ['gwen', 'privAccess', 'privileged app password']]) {
  for (const nsid of appPasswordMethods) {
    add(`${nsid}: ${label} session`, (s) => ({ ...forUser(nsid, who)(s), auth: `Bearer ${s.users[who][kind]}` }))
  }
  add(`com.atproto.server.getServiceAuth: ${label}, privileged lxm createAccount`, (s) =>
    q('com.atproto.server.getServiceAuth', { aud: s.serviceDid, lxm: 'com.atproto.server.createAccount' }, { auth: `Bearer ${s.users[who][kind]}` }))
  add(`com.atproto.server.getServiceAuth: ${label}, lxm chat.bsky.convo.sendMessage`, (s) =>
    q('com.atproto.server.getServiceAuth', { aud: 'did:web:api.bsky.chat', lxm: 'chat.bsky.convo.sendMessage' }, { auth: `Bearer ${s.users[who][kind]}` }))
  add(`com.atproto.server.getServiceAuth: ${label}, ordinary lxm`, (s) =>
    q('com.atproto.server.getServiceAuth', { aud: s.serviceDid, lxm: 'app.bsky.feed.getTimeline' }, { auth: `Bearer ${s.users[who][kind]}` }))
  add(`app.bsky.actor.putPreferences: ${label}, personalDetailsPref`, (s) =>
    p('app.bsky.actor.putPreferences', { preferences: [{ $type: 'app.bsky.actor.defs#personalDetailsPref', birthDate: '1990-01-01T00:00:00.000Z' }] }, { auth: `Bearer ${s.users[who][kind]}` }))
}

// --- com.atproto.server.createSession
const cs = 'com.atproto.server.createSession'
add(`${cs}: wrong password`, () => p(cs, { identifier: handleOf('alice'), password: 'wrong-password' }))
add(`${cs}: unknown handle`, () => p(cs, { identifier: handleOf('nobody'), password: 'whatever' }))
add(`${cs}: unknown DID`, () => p(cs, { identifier: NOBODY, password: 'whatever' }))
add(`${cs}: unknown email`, () => p(cs, { identifier: emailOf('nobody'), password: 'whatever' }))
add(`${cs}: identifier that is no handle, DID or email`, () => p(cs, { identifier: 'not an identifier!', password: 'whatever' }))
add(`${cs}: missing password`, () => p(cs, { identifier: handleOf('alice') }))
add(`${cs}: missing identifier`, () => p(cs, { password: 'whatever' }))
add(`${cs}: empty password`, () => p(cs, { identifier: handleOf('alice'), password: '' }))
add(`${cs}: identifier is a number`, () => p(cs, { identifier: 42, password: 'whatever' }))
add(`${cs}: password over 256 chars`, () => p(cs, { identifier: handleOf('alice'), password: 'x'.repeat(300) }))
add(`${cs}: revoked app password`, (s) => p(cs, { identifier: handleOf('alice'), password: 'aaaa-bbbb-cccc-dddd' }))
add(`${cs}: deactivated account (right password)`, () => p(cs, { identifier: handleOf('dave'), password: passwordOf('dave') }))
add(`${cs}: deleted account`, () => p(cs, { identifier: handleOf('frank'), password: passwordOf('frank') }))
add(`${cs}: body is not JSON`, () => ({ method: 'POST', nsid: cs, body: '{"identifier": ', contentType: 'application/json' }))
add(`${cs}: JSON sent as text/plain`, () => ({ method: 'POST', nsid: cs, body: JSON.stringify({ identifier: handleOf('alice'), password: 'x' }), contentType: 'text/plain' }))
add(`${cs}: JSON without content-type`, () => ({ method: 'POST', nsid: cs, body: JSON.stringify({ identifier: handleOf('alice'), password: 'x' }), contentType: null }))
add(`${cs}: empty body with JSON content-type`, () => ({ method: 'POST', nsid: cs, body: '', contentType: 'application/json' }))
add(`${cs}: no body at all`, () => ({ method: 'POST', nsid: cs }))
add(`${cs}: body is a JSON array`, () => ({ method: 'POST', nsid: cs, body: '[]', contentType: 'application/json' }))
add(`${cs}: body is JSON null`, () => ({ method: 'POST', nsid: cs, body: 'null', contentType: 'application/json' }))
add(`${cs}: content-type application/json; charset=utf-8 (accepted)`, () => ({ method: 'POST', nsid: cs, body: JSON.stringify({ identifier: handleOf('alice'), password: 'wrong' }), contentType: 'application/json; charset=utf-8' }))
add(`${cs}: JSON body over 150 KB`, () => p(cs, { identifier: handleOf('alice'), password: 'x', pad: 'x'.repeat(200 * 1024) }))
add(`${cs}: GET instead of POST`, () => q(cs, { identifier: handleOf('alice'), password: 'x' }))

// --- com.atproto.server.createAccount
const ca = 'com.atproto.server.createAccount'
// Each sign-up case has a handle and email of its own, so one that unexpectedly succeeds on one
// server does not change what the next case meets.
let signups = 0
const newAccount = (extra = {}) => {
  const n = `new${++signups}`
  return { handle: handleOf(n), email: emailOf(n), password: `${n}-password`, ...extra }
}
const addSignup = (name, build) => {
  const fresh = newAccount()
  add(name, build((extra = {}) => ({ ...fresh, ...extra })))
}
addSignup(`${ca}: taken handle`, (acct) => () => p(ca, acct({ handle: handleOf('alice') })))
addSignup(`${ca}: taken handle, other case`, (acct) => () => p(ca, acct({ handle: handleOf('alice').toUpperCase() })))
addSignup(`${ca}: taken email`, (acct) => () => p(ca, acct({ email: emailOf('alice') })))
addSignup(`${ca}: taken email, other case`, (acct) => () => p(ca, acct({ email: emailOf('alice').toUpperCase() })))
addSignup(`${ca}: invalid handle syntax`, (acct) => () => p(ca, acct({ handle: 'not a handle' })))
addSignup(`${ca}: handle with an underscore`, (acct) => () => p(ca, acct({ handle: `new_bie-${suffix}.test` })))
addSignup(`${ca}: handle on a domain not served here`, (acct) => () => p(ca, acct({ handle: `newbie-${suffix}.example.com` })))
addSignup(`${ca}: handle too short`, (acct) => () => p(ca, acct({ handle: 'ab.test' })))
addSignup(`${ca}: handle first segment too long`, (acct) => () => p(ca, acct({ handle: `${'a'.repeat(40)}.test` })))
addSignup(`${ca}: reserved handle`, (acct) => () => p(ca, acct({ handle: 'admin.test' })))
addSignup(`${ca}: handle with a disallowed TLD`, (acct) => () => p(ca, acct({ handle: `newbie-${suffix}.local` })))
addSignup(`${ca}: handle that is the service domain itself`, (acct) => () => p(ca, acct({ handle: 'test' })))
addSignup(`${ca}: bad email`, (acct) => () => p(ca, acct({ email: 'not-an-email' })))
addSignup(`${ca}: disposable-looking email domain`, (acct) => () => p(ca, acct({ email: `newbie-${suffix}@mailinator.com` })))
add(`${ca}: missing handle`, () => p(ca, { email: emailOf('newbie'), password: 'x-password' }))
add(`${ca}: missing email`, () => p(ca, { handle: handleOf('newbie'), password: 'x-password' }))
add(`${ca}: missing password`, () => p(ca, { handle: handleOf('newbie'), email: emailOf('newbie') }))
addSignup(`${ca}: password over 256 chars`, (acct) => () => p(ca, acct({ password: 'x'.repeat(300) })))
add(`${ca}: empty body object`, () => p(ca, {}))
addSignup(`${ca}: unknown invite code (invites not required)`, (acct) => () => p(ca, acct({ inviteCode: 'nope-nope' })))
addSignup(`${ca}: existing DID hosted elsewhere, no auth`, (acct) => (s) => p(ca, acct({ did: s.other.users.alice.did })))
addSignup(`${ca}: invalid DID`, (acct) => () => p(ca, acct({ did: 'not-a-did' })))
addSignup(`${ca}: unknown DID, no auth`, (acct) => () => p(ca, acct({ did: NOBODY })))
addSignup(`${ca}: DID with service auth for another DID`, (acct) => (s) => p(ca, acct({ did: s.other.users.alice.did }), { auth: `Bearer ${alice(s).svcCreateAccount}` }))
addSignup(`${ca}: own DID again with service auth`, (acct) => (s) => p(ca, acct({ did: alice(s).did }), { auth: `Bearer ${alice(s).svcCreateAccount}` }))
addSignup(`${ca}: service auth for another audience`, (acct) => (s) => p(ca, acct({ did: alice(s).did }), { auth: `Bearer ${alice(s).svcWrongAud}` }))
addSignup(`${ca}: service auth for another method`, (acct) => (s) => p(ca, acct({ did: alice(s).did }), { auth: `Bearer ${alice(s).svcUploadBlob}` }))
addSignup(`${ca}: session access token as auth`, (acct) => (s) => p(ca, acct({ did: alice(s).did }), { auth: s.bearer('alice') }))
addSignup(`${ca}: garbage bearer`, (acct) => () => p(ca, acct(), { auth: 'Bearer not-a-jwt' }))
addSignup(`${ca}: Basic auth`, (acct) => () => p(ca, acct(), { auth: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` }))
addSignup(`${ca}: unknown auth scheme`, (acct) => () => p(ca, acct(), { auth: 'Token abc' }))
addSignup(`${ca}: plcOp without a DID`, (acct) => () => p(ca, acct({ plcOp: { type: 'plc_operation' } })))
addSignup(`${ca}: unknown signing key`, (acct) => () => p(ca, acct({ signingKey: 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme' })))

// --- other com.atproto.server methods
add('com.atproto.server.resetPassword: bad token', () => p('com.atproto.server.resetPassword', { token: 'AAAAA-AAAAA', password: 'new-password' }))
add('com.atproto.server.resetPassword: missing password', () => p('com.atproto.server.resetPassword', { token: 'AAAAA-AAAAA' }))
add('com.atproto.server.resetPassword: password over 256 chars', () => p('com.atproto.server.resetPassword', { token: 'AAAAA-AAAAA', password: 'x'.repeat(300) }))
add('com.atproto.server.requestPasswordReset: unknown email', () => p('com.atproto.server.requestPasswordReset', { email: emailOf('nobody') }))
add('com.atproto.server.requestPasswordReset: missing email', () => p('com.atproto.server.requestPasswordReset', {}))
add('com.atproto.server.requestPasswordReset: deleted account', () => p('com.atproto.server.requestPasswordReset', { email: emailOf('frank') }))
const da = 'com.atproto.server.deleteAccount'
add(`${da}: wrong password`, (s) => p(da, { did: alice(s).did, password: 'wrong-password', token: 'AAAAA-AAAAA' }))
add(`${da}: right password, wrong token`, (s) => p(da, { did: alice(s).did, password: passwordOf('alice'), token: 'AAAAA-AAAAA' }))
add(`${da}: app password instead of the password`, (s) => p(da, { did: alice(s).did, password: alice(s).appPassword, token: 'AAAAA-AAAAA' }))
add(`${da}: unknown DID`, () => p(da, { did: NOBODY, password: 'whatever', token: 'AAAAA-AAAAA' }))
add(`${da}: already deleted account`, (s) => p(da, { did: s.users.frank.did, password: passwordOf('frank'), token: 'AAAAA-AAAAA' }))
add(`${da}: invalid DID`, () => p(da, { did: 'not-a-did', password: 'whatever', token: 'AAAAA-AAAAA' }))
add(`${da}: missing token`, (s) => p(da, { did: alice(s).did, password: passwordOf('alice') }))
const ce = 'com.atproto.server.confirmEmail'
add(`${ce}: wrong token (email already confirmed)`, (s) => p(ce, { email: emailOf('alice'), token: 'AAAAA-AAAAA' }, { auth: s.bearer('alice') }))
add(`${ce}: wrong token (never requested)`, (s) => p(ce, { email: emailOf('bob'), token: 'AAAAA-AAAAA' }, { auth: s.bearer('bob') }))
add(`${ce}: another email address`, (s) => p(ce, { email: emailOf('nobody'), token: 'AAAAA-AAAAA' }, { auth: s.bearer('bob') }))
add(`${ce}: missing token`, (s) => p(ce, { email: emailOf('bob') }, { auth: s.bearer('bob') }))
const ue = 'com.atproto.server.updateEmail'
add(`${ue}: confirmed email, no token`, (s) => p(ue, { email: emailOf('alice2') }, { auth: s.bearer('alice') }))
add(`${ue}: confirmed email, wrong token`, (s) => p(ue, { email: emailOf('alice2'), token: 'AAAAA-AAAAA' }, { auth: s.bearer('alice') }))
add(`${ue}: invalid email`, (s) => p(ue, { email: 'not-an-email' }, { auth: s.bearer('bob') }))
add(`${ue}: email taken by another account`, (s) => p(ue, { email: emailOf('alice') }, { auth: s.bearer('bob') }))
add(`${ue}: missing email`, (s) => p(ue, {}, { auth: s.bearer('bob') }))
add('com.atproto.server.createAppPassword: duplicate name', (s) => p('com.atproto.server.createAppPassword', { name: 'app' }, { auth: s.bearer('alice') }))
add('com.atproto.server.createAppPassword: empty name', (s) => p('com.atproto.server.createAppPassword', { name: '' }, { auth: s.bearer('alice') }))
add('com.atproto.server.createAppPassword: missing name', (s) => p('com.atproto.server.createAppPassword', {}, { auth: s.bearer('alice') }))
add('com.atproto.server.createAppPassword: name over 100 chars', (s) => p('com.atproto.server.createAppPassword', { name: 'n'.repeat(120) }, { auth: s.bearer('alice') }))
add('com.atproto.server.revokeAppPassword: unknown name', (s) => p('com.atproto.server.revokeAppPassword', { name: 'no-such-password' }, { auth: s.bearer('alice') }))
add('com.atproto.server.deactivateAccount: deleteAfter not a datetime', (s) => p('com.atproto.server.deactivateAccount', { deleteAfter: 'tomorrow' }, { auth: s.bearer('bob') }))
add('com.atproto.server.activateAccount: already active', (s) => ({ method: 'POST', nsid: 'com.atproto.server.activateAccount', auth: s.bearer('bob') }))
add('com.atproto.server.checkAccountStatus: deactivated account', (s) => q('com.atproto.server.checkAccountStatus', {}, { auth: s.bearer('dave') }))
add('com.atproto.server.requestEmailConfirmation: twice in a row', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailConfirmation', auth: s.bearer('alice') }))
add('com.atproto.server.requestEmailUpdate: confirmed email', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailUpdate', auth: s.bearer('alice') }))
add('com.atproto.server.requestEmailUpdate: again at once', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailUpdate', auth: s.bearer('alice') }))
add('com.atproto.server.requestPasswordReset: known email', () => p('com.atproto.server.requestPasswordReset', { email: emailOf('bob') }))
add('com.atproto.server.requestPasswordReset: again at once', () => p('com.atproto.server.requestPasswordReset', { email: emailOf('bob') }))
add('com.atproto.server.requestAccountDelete: twice at once (1)', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestAccountDelete', auth: s.bearer('bob') }))
add('com.atproto.server.requestAccountDelete: twice at once (2)', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestAccountDelete', auth: s.bearer('bob') }))
add('com.atproto.server.requestEmailUpdate: deactivated account', (s) => ({ method: 'POST', nsid: 'com.atproto.server.requestEmailUpdate', auth: s.bearer('dave') }))
add('com.atproto.server.reserveSigningKey: invalid DID', () => p('com.atproto.server.reserveSigningKey', { did: 'not-a-did' }))
add('com.atproto.server.describeServer: garbage bearer (method takes no auth)', () => q('com.atproto.server.describeServer', {}, { auth: 'Bearer not-a-jwt' }))
add('com.atproto.server.describeServer: POST instead of GET', () => p('com.atproto.server.describeServer', {}))

// --- com.atproto.server.getServiceAuth
const gsa = 'com.atproto.server.getServiceAuth'
const gsaAs = (params) => (s) => q(gsa, typeof params === 'function' ? params(s) : params, { auth: s.bearer('alice') })
add(`${gsa}: missing aud`, gsaAs({}))
add(`${gsa}: aud not a DID`, gsaAs({ aud: 'not-a-did' }))
add(`${gsa}: aud a handle`, gsaAs({ aud: handleOf('bob') }))
add(`${gsa}: aud with a service fragment`, gsaAs({ aud: 'did:web:api.bsky.app#bsky_appview' }))
add(`${gsa}: aud with an empty fragment`, gsaAs({ aud: 'did:web:api.bsky.app#' }))
add(`${gsa}: exp in the past`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'app.bsky.feed.getTimeline', exp: now() - 60 })))
add(`${gsa}: exp two hours ahead`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'app.bsky.feed.getTimeline', exp: now() + 7200 })))
add(`${gsa}: no lxm, exp five minutes ahead`, gsaAs((s) => ({ aud: s.serviceDid, exp: now() + 300 })))
add(`${gsa}: exp not an integer`, gsaAs((s) => ({ aud: s.serviceDid, exp: 'soon' })))
add(`${gsa}: lxm not an NSID`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'not an nsid' })))
add(`${gsa}: protected lxm getSession`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'com.atproto.server.getSession' })))
add(`${gsa}: protected lxm createAppPassword`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'com.atproto.server.createAppPassword' })))
add(`${gsa}: protected lxm updateHandle`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'com.atproto.identity.updateHandle' })))
add(`${gsa}: protected lxm admin.sendEmail`, gsaAs((s) => ({ aud: s.serviceDid, lxm: 'com.atproto.admin.sendEmail' })))
add(`${gsa}: deactivated account`, (s) => q(gsa, { aud: s.serviceDid, lxm: 'com.atproto.server.createAccount' }, { auth: s.bearer('dave') }))

// --- admin-only methods
const basic = (user, pass) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
for (const [nsid, body] of [
  ['com.atproto.server.createInviteCode', { useCount: 1 }],
  ['com.atproto.server.createInviteCodes', { codeCount: 1, useCount: 1 }],
]) {
  add(`${nsid}: no auth`, () => p(nsid, body))
  add(`${nsid}: wrong admin password`, () => p(nsid, body, { auth: basic('admin', 'wrong') }))
  add(`${nsid}: wrong admin user name`, () => p(nsid, body, { auth: basic('root', adminPassword) }))
  add(`${nsid}: Basic value not base64 user:pass`, () => p(nsid, body, { auth: 'Basic bm9jb2xvbg==' }))
  add(`${nsid}: user bearer token`, (s) => p(nsid, body, { auth: s.bearer('alice') }))
  add(`${nsid}: bearer garbage`, () => p(nsid, body, { auth: 'Bearer not-a-jwt' }))
  add(`${nsid}: unknown scheme`, () => p(nsid, body, { auth: 'Token abc' }))
  add(`${nsid}: admin auth, missing useCount`, () => p(nsid, {}, { auth: basic('admin', adminPassword) }))
  add(`${nsid}: admin auth, forAccount not a DID`, () => p(nsid, { ...body, forAccount: 'nobody', forAccounts: ['nobody'] }, { auth: basic('admin', adminPassword) }))
}
add('com.atproto.server.createInviteCodes: admin auth, codeCount 0', () => p('com.atproto.server.createInviteCodes', { codeCount: 0, useCount: 1 }, { auth: basic('admin', adminPassword) }))

// --- com.atproto.identity
add('com.atproto.identity.resolveHandle: unknown handle under the service domain', () => q('com.atproto.identity.resolveHandle', { handle: handleOf('nobody') }))
add('com.atproto.identity.resolveHandle: unknown handle elsewhere (.invalid)', () => q('com.atproto.identity.resolveHandle', { handle: 'nobody.invalid' }))
add('com.atproto.identity.resolveHandle: invalid handle', () => q('com.atproto.identity.resolveHandle', { handle: 'not a handle' }))
add('com.atproto.identity.resolveHandle: a DID instead of a handle', () => q('com.atproto.identity.resolveHandle', { handle: NOBODY }))
add('com.atproto.identity.resolveHandle: missing handle', () => q('com.atproto.identity.resolveHandle', {}))
add('com.atproto.identity.resolveHandle: handle of a deactivated account', () => q('com.atproto.identity.resolveHandle', { handle: handleOf('dave') }))
add('com.atproto.identity.resolveHandle: handle of a deleted account', () => q('com.atproto.identity.resolveHandle', { handle: handleOf('frank') }))
add('com.atproto.identity.resolveHandle: upper-case handle', () => q('com.atproto.identity.resolveHandle', { handle: handleOf('alice').toUpperCase() }))
add('com.atproto.identity.resolveDid: unknown DID', () => q('com.atproto.identity.resolveDid', { did: NOBODY }))
add('com.atproto.identity.resolveDid: invalid DID', () => q('com.atproto.identity.resolveDid', { did: 'not-a-did' }))
add('com.atproto.identity.resolveDid: missing did', () => q('com.atproto.identity.resolveDid', {}))
add('com.atproto.identity.resolveIdentity: unknown handle', () => q('com.atproto.identity.resolveIdentity', { identifier: handleOf('nobody') }))
add('com.atproto.identity.resolveIdentity: invalid identifier', () => q('com.atproto.identity.resolveIdentity', { identifier: 'not an identifier' }))
add('com.atproto.identity.refreshIdentity: no auth', () => p('com.atproto.identity.refreshIdentity', { identifier: handleOf('alice') }))
add('com.atproto.identity.refreshIdentity: unknown DID', (s) => p('com.atproto.identity.refreshIdentity', { identifier: NOBODY }, { auth: s.bearer('alice') }))
const uh = 'com.atproto.identity.updateHandle'
add(`${uh}: handle taken by another account`, (s) => p(uh, { handle: handleOf('bob') }, { auth: s.bearer('alice') }))
add(`${uh}: invalid handle`, (s) => p(uh, { handle: 'not a handle' }, { auth: s.bearer('alice') }))
add(`${uh}: reserved handle`, (s) => p(uh, { handle: 'admin.test' }, { auth: s.bearer('alice') }))
add(`${uh}: handle too short`, (s) => p(uh, { handle: 'ab.test' }, { auth: s.bearer('alice') }))
add(`${uh}: external handle under a disallowed TLD (.invalid)`, (s) => p(uh, { handle: `alice-${suffix}.invalid` }, { auth: s.bearer('alice') }))
add(`${uh}: external handle that does not resolve`, (s) => p(uh, { handle: `alice-${suffix}.example.com` }, { auth: s.bearer('alice'), timeout: 60_000 }))
add(`${uh}: missing handle`, (s) => p(uh, {}, { auth: s.bearer('alice') }))
add(`${uh}: deactivated account`, (s) => p(uh, { handle: handleOf('dave2') }, { auth: s.bearer('dave') }))
const spo = 'com.atproto.identity.signPlcOperation'
add(`${spo}: no token`, (s) => p(spo, {}, { auth: s.bearer('alice') }))
add(`${spo}: wrong token`, (s) => p(spo, { token: 'AAAAA-AAAAA' }, { auth: s.bearer('alice') }))
add(`${spo}: rotationKeys not DIDs`, (s) => p(spo, { token: 'AAAAA-AAAAA', rotationKeys: [1] }, { auth: s.bearer('alice') }))
const sub = 'com.atproto.identity.submitPlcOperation'
add(`${sub}: missing operation`, (s) => p(sub, {}, { auth: s.bearer('alice') }))
add(`${sub}: operation not a PLC operation`, (s) => p(sub, { operation: { hello: 'world' } }, { auth: s.bearer('alice') }))
add(`${sub}: operation not an object`, (s) => p(sub, { operation: 'nope' }, { auth: s.bearer('alice') }))
add(`${sub}: unsigned operation without the server's rotation key`, (s) => p(sub, {
  operation: { type: 'plc_operation', rotationKeys: ['did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'], verificationMethods: {}, alsoKnownAs: [], services: {}, prev: null },
}, { auth: s.bearer('alice') }))
add('com.atproto.identity.requestPlcOperationSignature: deactivated account', (s) => ({ method: 'POST', nsid: 'com.atproto.identity.requestPlcOperationSignature', auth: s.bearer('dave') }))

// --- com.atproto.repo reads
const gr = 'com.atproto.repo.getRecord'
add(`${gr}: unknown repo DID`, () => q(gr, { repo: NOBODY, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add(`${gr}: unknown repo handle`, () => q(gr, { repo: handleOf('nobody'), collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add(`${gr}: missing record`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add(`${gr}: missing collection`, (s) => q(gr, { repo: alice(s).did, collection: 'com.example.nothing', rkey: 'self' }))
add(`${gr}: record with a cid that is not its own`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, cid: MISSING_CID }))
add(`${gr}: invalid cid`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, cid: 'not-a-cid' }))
add(`${gr}: invalid rkey`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: '..' }))
add(`${gr}: rkey with a slash`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: 'a/b' }))
add(`${gr}: invalid collection`, (s) => q(gr, { repo: alice(s).did, collection: 'not a collection', rkey: 'self' }))
add(`${gr}: invalid repo`, () => q(gr, { repo: 'not a repo', collection: 'app.bsky.feed.post', rkey: 'self' }))
add(`${gr}: invalid DID syntax`, () => q(gr, { repo: 'did:plc:', collection: 'app.bsky.feed.post', rkey: 'self' }))
add(`${gr}: missing rkey`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post' }))
add(`${gr}: repo given twice`, (s) => q(gr, { repo: [alice(s).did, alice(s).did], collection: 'app.bsky.feed.post', rkey: alice(s).postRkey }))
add(`${gr}: unknown extra parameter (accepted)`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, foo: 'bar' }))
add(`${gr}: deactivated account's record`, (s) => q(gr, { repo: s.users.dave.did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add(`${gr}: deleted account's record`, (s) => q(gr, { repo: s.users.frank.did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add(`${gr}: POST instead of GET`, (s) => p(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey }))
add(`${gr}: PUT`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey }, { method: 'PUT' }))
add(`${gr}: DELETE`, (s) => q(gr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey }, { method: 'DELETE' }))
const lr = 'com.atproto.repo.listRecords'
add(`${lr}: unknown repo`, () => q(lr, { repo: NOBODY, collection: 'app.bsky.feed.post' }))
add(`${lr}: unknown handle`, () => q(lr, { repo: handleOf('nobody'), collection: 'app.bsky.feed.post' }))
add(`${lr}: missing collection param`, (s) => q(lr, { repo: alice(s).did }))
add(`${lr}: invalid collection`, (s) => q(lr, { repo: alice(s).did, collection: 'nope' }))
add(`${lr}: limit 0`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', limit: 0 }))
add(`${lr}: limit 101`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', limit: 101 }))
add(`${lr}: limit not a number`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', limit: 'ten' }))
add(`${lr}: limit 1.5`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', limit: '1.5' }))
add(`${lr}: reverse not a boolean`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', reverse: 'maybe' }))
add(`${lr}: cursor that is no record key`, (s) => q(lr, { repo: alice(s).did, collection: 'app.bsky.feed.post', cursor: '!!bad cursor!!' }))
add(`${lr}: deactivated account`, (s) => q(lr, { repo: s.users.dave.did, collection: 'app.bsky.feed.post' }))
add(`${lr}: deleted account`, (s) => q(lr, { repo: s.users.frank.did, collection: 'app.bsky.feed.post' }))
const dr = 'com.atproto.repo.describeRepo'
add(`${dr}: unknown repo`, () => q(dr, { repo: NOBODY }))
add(`${dr}: unknown handle`, () => q(dr, { repo: handleOf('nobody') }))
add(`${dr}: invalid repo`, () => q(dr, { repo: 'not a repo' }))
add(`${dr}: missing repo`, () => q(dr, {}))
add(`${dr}: deactivated account`, (s) => q(dr, { repo: s.users.dave.did }))
add(`${dr}: deleted account`, (s) => q(dr, { repo: s.users.frank.did }))

// --- com.atproto.repo writes
const cr = 'com.atproto.repo.createRecord'
const asAlice = (build) => (s) => ({ ...build(s), auth: s.bearer('alice') })
add(`${cr}: post without text`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: { $type: 'app.bsky.feed.post', createdAt: '2024-01-01T00:00:00.000Z' } })))
add(`${cr}: post with a bad createdAt`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: { ...POST(), createdAt: 'yesterday' } })))
add(`${cr}: post text too long`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: POST('x'.repeat(3001)) })))
add(`${cr}: record $type differs from the collection`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: { ...POST(), $type: 'app.bsky.feed.like' } })))
add(`${cr}: record without $type`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: { text: 'x', createdAt: '2024-01-01T00:00:00.000Z' } })))
add(`${cr}: record not an object`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: 'text' })))
add(`${cr}: unknown collection, validate true`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', validate: true, record: { $type: 'com.example.thing' } })))
add(`${cr}: invalid collection NSID`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'not-an-nsid', record: { $type: 'not-an-nsid' } })))
add(`${cr}: another user's repo`, asAlice((s) => p(cr, { repo: s.users.bob.did, collection: 'app.bsky.feed.post', record: POST() })))
add(`${cr}: another user's repo by handle`, asAlice(() => p(cr, { repo: handleOf('bob'), collection: 'app.bsky.feed.post', record: POST() })))
add(`${cr}: unknown repo`, asAlice(() => p(cr, { repo: NOBODY, collection: 'app.bsky.feed.post', record: POST() })))
add(`${cr}: swapCommit mismatch`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: POST(), swapCommit: MISSING_CID })))
add(`${cr}: swapCommit not a CID`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', record: POST(), swapCommit: 'nope' })))
add(`${cr}: invalid rkey`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: 'a/b', record: POST() })))
add(`${cr}: rkey not a TID for a tid-keyed collection`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: 'self', record: POST() })))
add(`${cr}: rkey too long`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', rkey: 'k'.repeat(600), record: { $type: 'com.example.thing' } })))
add(`${cr}: existing rkey`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, record: POST() })))
add(`${cr}: missing record`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'app.bsky.feed.post' })))
add(`${cr}: record with a blob that was never uploaded`, asAlice((s) => p(cr, {
  repo: alice(s).did, collection: 'app.bsky.feed.post',
  record: { ...POST('img'), embed: { $type: 'app.bsky.embed.images', images: [{ alt: '', image: { $type: 'blob', ref: { $link: MISSING_RAW_CID }, mimeType: 'image/png', size: 10 } }] } },
})))
add(`${cr}: record with a float`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', record: { $type: 'com.example.thing', n: 1.5 } })))
add(`${cr}: deactivated account`, (s) => p(cr, { repo: s.users.dave.did, collection: 'app.bsky.feed.post', record: POST() }, { auth: s.bearer('dave') }))
add(`${cr}: JSON body of 900 KB (under the reference's 1 MB for record writes)`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', record: { $type: 'com.example.thing', pad: 'x'.repeat(900 * 1024) } })))
add(`${cr}: JSON body of 2 MB`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', record: { $type: 'com.example.thing', pad: 'x'.repeat(2 * 1024 * 1024) } })))
add(`${cr}: JSON body of 200 KB`, asAlice((s) => p(cr, { repo: alice(s).did, collection: 'com.example.thing', record: { $type: 'com.example.thing', pad: 'x'.repeat(200 * 1024) } })))
add(`${cr}: GET instead of POST`, asAlice((s) => q(cr, { repo: alice(s).did })))
add(`${cr}: DELETE`, asAlice((s) => q(cr, { repo: alice(s).did }, { method: 'DELETE' })))
const pr = 'com.atproto.repo.putRecord'
// a record that differs from the stored one: an identical put is a no-op on the reference, before any swap check
const put = (s, extra) => p(pr, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, record: POST('changed'), ...extra })
add(`${pr}: swapRecord mismatch`, asAlice((s) => put(s, { swapRecord: MISSING_CID })))
add(`${pr}: swapRecord mismatch, record unchanged`, asAlice((s) => put(s, { record: POST(), swapRecord: MISSING_CID })))
add(`${pr}: swapRecord null on an existing record`, asAlice((s) => put(s, { swapRecord: null })))
add(`${pr}: swapRecord set on a missing record`, asAlice((s) => put(s, { rkey: '3jzfcijpj2z2a', swapRecord: alice(s).postCid })))
add(`${pr}: swapCommit mismatch`, asAlice((s) => put(s, { swapCommit: MISSING_CID })))
add(`${pr}: invalid rkey`, asAlice((s) => put(s, { rkey: '..' })))
add(`${pr}: missing rkey`, asAlice((s) => put(s, { rkey: undefined })))
add(`${pr}: another user's repo`, asAlice((s) => put(s, { repo: s.users.bob.did, rkey: s.users.bob.postRkey })))
add(`${pr}: record failing validation`, asAlice((s) => put(s, { record: { $type: 'app.bsky.feed.post' } })))
add(`${pr}: record $type differs from the collection`, asAlice((s) => put(s, { record: { ...POST(), $type: 'app.bsky.feed.like' } })))
const del = 'com.atproto.repo.deleteRecord'
add(`${del}: missing record (no-op)`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' })))
add(`${del}: missing record with swapRecord`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a', swapRecord: alice(s).postCid })))
add(`${del}: swapRecord mismatch`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, swapRecord: MISSING_CID })))
add(`${del}: swapCommit mismatch`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey, swapCommit: MISSING_CID })))
add(`${del}: another user's repo`, asAlice((s) => p(del, { repo: s.users.bob.did, collection: 'app.bsky.feed.post', rkey: s.users.bob.postRkey })))
add(`${del}: invalid rkey`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'app.bsky.feed.post', rkey: '..' })))
add(`${del}: invalid collection`, asAlice((s) => p(del, { repo: alice(s).did, collection: 'nope', rkey: 'self' })))
const aw = 'com.atproto.repo.applyWrites'
const w = {
  create: (extra = {}) => ({ $type: 'com.atproto.repo.applyWrites#create', collection: 'app.bsky.feed.post', value: POST(), ...extra }),
  update: (rkey, extra = {}) => ({ $type: 'com.atproto.repo.applyWrites#update', collection: 'app.bsky.feed.post', rkey, value: POST(), ...extra }),
  delete: (rkey, extra = {}) => ({ $type: 'com.atproto.repo.applyWrites#delete', collection: 'app.bsky.feed.post', rkey, ...extra }),
}
add(`${aw}: delete of a missing record`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.delete('3jzfcijpj2z2a')] })))
add(`${aw}: update of a missing record`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.update('3jzfcijpj2z2a')] })))
add(`${aw}: create at an existing rkey`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.create({ rkey: alice(s).postRkey })] })))
add(`${aw}: two writes to one rkey`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.create({ rkey: '3jzfcijpj2z2b' }), w.create({ rkey: '3jzfcijpj2z2b' })] })))
add(`${aw}: 201 writes`, asAlice((s) => p(aw, { repo: alice(s).did, writes: Array.from({ length: 201 }, (_, i) => w.delete(`del${i}`)) })))
add(`${aw}: swapCommit mismatch`, asAlice((s) => p(aw, { repo: alice(s).did, swapCommit: MISSING_CID, writes: [w.create()] })))
add(`${aw}: write with an unknown $type`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [{ $type: 'com.atproto.repo.applyWrites#upsert', collection: 'app.bsky.feed.post', rkey: 'x' }] })))
add(`${aw}: write without $type`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [{ collection: 'app.bsky.feed.post', rkey: 'x' }] })))
add(`${aw}: create failing validation`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.create({ value: { $type: 'app.bsky.feed.post' } })] })))
add(`${aw}: create with an invalid rkey`, asAlice((s) => p(aw, { repo: alice(s).did, writes: [w.create({ rkey: '..' })] })))
add(`${aw}: another user's repo`, asAlice((s) => p(aw, { repo: s.users.bob.did, writes: [w.create()] })))
add(`${aw}: writes not an array`, asAlice((s) => p(aw, { repo: alice(s).did, writes: {} })))
add(`${aw}: missing writes`, asAlice((s) => p(aw, { repo: alice(s).did })))
add(`${aw}: deactivated account`, (s) => p(aw, { repo: s.users.dave.did, writes: [w.create()] }, { auth: s.bearer('dave') }))
const ub = 'com.atproto.repo.uploadBlob'
add(`${ub}: no content-type`, asAlice(() => ({ method: 'POST', nsid: ub, body: PNG, contentType: null })))
add(`${ub}: empty body`, asAlice(() => ({ method: 'POST', nsid: ub, body: Buffer.alloc(0), contentType: 'image/png' })))
add(`${ub}: empty body, no content-type`, asAlice(() => ({ method: 'POST', nsid: ub })))
add(`${ub}: content-type */*`, asAlice(() => ({ method: 'POST', nsid: ub, body: PNG, contentType: '*/*' })))
add(`${ub}: over the upload limit`, asAlice(() => ({ method: 'POST', nsid: ub, body: Buffer.alloc(blobLimit + 1, 7), contentType: 'application/octet-stream', timeout: 60_000 })))
add(`${ub}: service auth for uploadBlob`, (s) => ({ method: 'POST', nsid: ub, body: PNG, contentType: 'image/png', auth: `Bearer ${alice(s).svcUploadBlob}` }))
add(`${ub}: service auth for another method`, (s) => ({ method: 'POST', nsid: ub, body: PNG, contentType: 'image/png', auth: `Bearer ${alice(s).svcCreateAccount}` }))
add(`${ub}: deactivated account`, (s) => ({ method: 'POST', nsid: ub, body: PNG, contentType: 'image/png', auth: s.bearer('dave') }))
add(`${ub}: GET instead of POST`, asAlice(() => q(ub, {})))
const ir = 'com.atproto.repo.importRepo'
add(`${ir}: not a CAR`, (s) => ({ method: 'POST', nsid: ir, body: Buffer.from('not a car'), contentType: 'application/vnd.ipld.car', auth: s.bearer('bob') }))
add(`${ir}: empty body`, (s) => ({ method: 'POST', nsid: ir, body: Buffer.alloc(0), contentType: 'application/vnd.ipld.car', auth: s.bearer('bob') }))
add(`${ir}: JSON content-type`, (s) => ({ method: 'POST', nsid: ir, body: '{}', contentType: 'application/json', auth: s.bearer('bob') }))
add(`${ir}: no content-type`, (s) => ({ method: 'POST', nsid: ir, body: Buffer.from('not a car'), contentType: null, auth: s.bearer('bob') }))
const lmb = 'com.atproto.repo.listMissingBlobs'
add(`${lmb}: limit 0`, asAlice(() => q(lmb, { limit: 0 })))
add(`${lmb}: limit 1001`, asAlice(() => q(lmb, { limit: 1001 })))
add(`${lmb}: cursor not a CID`, asAlice(() => q(lmb, { cursor: 'garbage' })))

// --- com.atproto.sync
const syncAuthVariants = [
  ['garbage bearer', () => 'Bearer not-a-jwt'],
  ['forged bearer', (s) => `Bearer ${alice(s).forged}`],
  ['expired bearer', (s) => `Bearer ${alice(s).expired}`],
  ['unknown scheme', () => 'Token abc'],
  ['wrong admin password', () => basic('admin', 'wrong')],
]
const syncMethods = [
  ['com.atproto.sync.getRepo', (s) => ({ did: alice(s).did })],
  ['com.atproto.sync.getLatestCommit', (s) => ({ did: alice(s).did })],
  ['com.atproto.sync.getRepoStatus', (s) => ({ did: alice(s).did })],
  ['com.atproto.sync.getRecord', (s) => ({ did: alice(s).did, collection: 'app.bsky.feed.post', rkey: alice(s).postRkey })],
  ['com.atproto.sync.getBlocks', (s) => ({ did: s.users.bob.did, cids: s.users.bob.postCid })],
  ['com.atproto.sync.getBlob', (s) => ({ did: alice(s).did, cid: alice(s).blobCid })],
  ['com.atproto.sync.listBlobs', (s) => ({ did: alice(s).did })],
  ['com.atproto.sync.listRepos', () => ({})],
  ['com.atproto.sync.getHead', (s) => ({ did: alice(s).did })],
  ['com.atproto.sync.getCheckout', (s) => ({ did: alice(s).did })],
]
for (const [nsid, params] of syncMethods) {
  for (const [variant, header] of syncAuthVariants) add(`${nsid}: ${variant} (auth optional)`, (s) => q(nsid, params(s), { auth: header(s) }))
  if (nsid === 'com.atproto.sync.listRepos') continue
  add(`${nsid}: unknown DID`, (s) => q(nsid, { ...params(s), did: NOBODY }))
  add(`${nsid}: invalid DID`, (s) => q(nsid, { ...params(s), did: 'not-a-did' }))
  add(`${nsid}: a handle instead of a DID`, (s) => q(nsid, { ...params(s), did: handleOf('alice') }))
  add(`${nsid}: missing did`, (s) => q(nsid, { ...params(s), did: undefined }))
  add(`${nsid}: deactivated account`, (s) => q(nsid, { ...params(s), did: s.users.dave.did }))
  add(`${nsid}: deactivated account, its own session`, (s) => q(nsid, { ...params(s), did: s.users.dave.did }, { auth: s.bearer('dave') }))
  add(`${nsid}: deactivated account, admin auth`, (s) => q(nsid, { ...params(s), did: s.users.dave.did }, { auth: basic('admin', adminPassword) }))
  add(`${nsid}: deleted account`, (s) => q(nsid, { ...params(s), did: s.users.frank.did }))
  add(`${nsid}: POST instead of GET`, (s) => ({ method: 'POST', nsid, params: params(s), json: {} }))
}
add('com.atproto.sync.getRepo: since not a TID', (s) => q('com.atproto.sync.getRepo', { did: alice(s).did, since: 'not-a-tid' }))
add('com.atproto.sync.getRepo: since in the future', (s) => q('com.atproto.sync.getRepo', { did: alice(s).did, since: 'zzzzzzzzzzzzz' }))
add('com.atproto.sync.getRecord: missing record', (s) => q('com.atproto.sync.getRecord', { did: alice(s).did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }))
add('com.atproto.sync.getRecord: invalid collection', (s) => q('com.atproto.sync.getRecord', { did: alice(s).did, collection: 'nope', rkey: 'self' }))
add('com.atproto.sync.getRecord: invalid rkey', (s) => q('com.atproto.sync.getRecord', { did: alice(s).did, collection: 'app.bsky.feed.post', rkey: '..' }))
add('com.atproto.sync.getRecord: missing rkey', (s) => q('com.atproto.sync.getRecord', { did: alice(s).did, collection: 'app.bsky.feed.post' }))
add('com.atproto.sync.getBlocks: missing block', (s) => q('com.atproto.sync.getBlocks', { did: alice(s).did, cids: MISSING_CID }))
add('com.atproto.sync.getBlocks: one present, one missing', (s) => q('com.atproto.sync.getBlocks', { did: s.users.bob.did, cids: [s.users.bob.postCid, MISSING_CID] }))
add('com.atproto.sync.getBlocks: invalid CID', (s) => q('com.atproto.sync.getBlocks', { did: alice(s).did, cids: 'not-a-cid' }))
add('com.atproto.sync.getBlocks: no cids', (s) => q('com.atproto.sync.getBlocks', { did: alice(s).did }))
add('com.atproto.sync.getBlocks: another repo\'s block', (s) => q('com.atproto.sync.getBlocks', { did: alice(s).did, cids: s.users.bob.postCid }))
add('com.atproto.sync.getBlob: missing blob', (s) => q('com.atproto.sync.getBlob', { did: alice(s).did, cid: MISSING_RAW_CID }))
add('com.atproto.sync.getBlob: invalid CID', (s) => q('com.atproto.sync.getBlob', { did: alice(s).did, cid: 'not-a-cid' }))
add('com.atproto.sync.getBlob: CID of a record, not a blob', (s) => q('com.atproto.sync.getBlob', { did: alice(s).did, cid: alice(s).postCid }))
add('com.atproto.sync.getBlob: missing cid', (s) => q('com.atproto.sync.getBlob', { did: alice(s).did }))
add('com.atproto.sync.getBlob: another repo\'s blob', (s) => q('com.atproto.sync.getBlob', { did: s.users.bob.did, cid: alice(s).blobCid }))
add('com.atproto.sync.listBlobs: limit 0', (s) => q('com.atproto.sync.listBlobs', { did: alice(s).did, limit: 0 }))
add('com.atproto.sync.listBlobs: limit 1001', (s) => q('com.atproto.sync.listBlobs', { did: alice(s).did, limit: 1001 }))
add('com.atproto.sync.listBlobs: since not a TID', (s) => q('com.atproto.sync.listBlobs', { did: alice(s).did, since: 'nope' }))
add('com.atproto.sync.listBlobs: cursor not a CID', (s) => q('com.atproto.sync.listBlobs', { did: alice(s).did, cursor: 'garbage' }))
add('com.atproto.sync.listRepos: limit 0', () => q('com.atproto.sync.listRepos', { limit: 0 }))
add('com.atproto.sync.listRepos: limit 1001', () => q('com.atproto.sync.listRepos', { limit: 1001 }))
add('com.atproto.sync.listRepos: malformed cursor', () => q('com.atproto.sync.listRepos', { cursor: 'garbage' }))
add('com.atproto.sync.subscribeRepos: plain HTTP GET', () => ({ method: 'GET', nsid: 'com.atproto.sync.subscribeRepos', timeout: 5_000 }))
add('com.atproto.sync.subscribeRepos: plain HTTP GET with a future cursor', () => ({ method: 'GET', nsid: 'com.atproto.sync.subscribeRepos', params: { cursor: 999999999 }, timeout: 5_000 }))
add('com.atproto.sync.subscribeRepos: plain HTTP GET with a session', asAlice(() => ({ method: 'GET', nsid: 'com.atproto.sync.subscribeRepos', timeout: 5_000 })))
add('com.atproto.sync.subscribeRepos: POST', () => ({ method: 'POST', nsid: 'com.atproto.sync.subscribeRepos', json: {}, timeout: 5_000 }))
add('com.atproto.sync.requestCrawl: no relay configured', () => p('com.atproto.sync.requestCrawl', { hostname: 'localhost' }))
add('com.atproto.sync.requestCrawl: with a session', asAlice(() => p('com.atproto.sync.requestCrawl', { hostname: 'localhost' })))
add('com.atproto.sync.notifyOfUpdate', () => p('com.atproto.sync.notifyOfUpdate', { hostname: 'localhost' }))

// --- app.bsky.actor preferences
const pp = 'app.bsky.actor.putPreferences'
add(`${pp}: preference without $type`, asAlice(() => p(pp, { preferences: [{ enabled: true }] })))
add(`${pp}: preference outside app.bsky`, asAlice(() => p(pp, { preferences: [{ $type: 'com.example.pref', enabled: true }] })))
add(`${pp}: preference of an unknown app.bsky type`, asAlice(() => p(pp, { preferences: [{ $type: 'app.bsky.actor.defs#noSuchPref', enabled: true }] })))
add(`${pp}: preference failing its own schema`, asAlice(() => p(pp, { preferences: [{ $type: 'app.bsky.actor.defs#adultContentPref', enabled: 'yes' }] })))
add(`${pp}: missing preferences`, asAlice(() => p(pp, {})))
add(`${pp}: preferences not an array`, asAlice(() => p(pp, { preferences: {} })))
add(`${pp}: preference not an object`, asAlice(() => p(pp, { preferences: ['x'] })))
add(`${pp}: body is not JSON`, asAlice(() => ({ method: 'POST', nsid: pp, body: 'nope', contentType: 'application/json' })))
add(`${pp}: deactivated account`, (s) => p(pp, { preferences: [] }, { auth: s.bearer('dave') }))
add('app.bsky.actor.getPreferences: deactivated account', (s) => q('app.bsky.actor.getPreferences', {}, { auth: s.bearer('dave') }))
add('app.bsky.actor.getPreferences: POST instead of GET', asAlice(() => p('app.bsky.actor.getPreferences', {})))

// --- routing: unknown methods, the proxy header, admin methods not served by Aurora
add('unknown com.atproto method, no auth', () => q('com.atproto.repo.doesNotExist'))
add('unknown com.atproto method, with auth', asAlice(() => q('com.atproto.repo.doesNotExist')))
add('unknown third-party method, no auth', () => q('com.example.fooBar'))
add('unknown third-party method, with auth', asAlice(() => q('com.example.fooBar')))
add('unknown method, POST with auth', asAlice(() => p('com.example.fooBar', {})))
add('path that is no NSID', () => ({ method: 'GET', path: '/xrpc/not_an_nsid' }))
add('bare /xrpc/', () => ({ method: 'GET', path: '/xrpc/' }))
add('method name with a trailing slash', () => ({ method: 'GET', path: '/xrpc/com.atproto.server.describeServer/' }))
add('method name in another case', () => ({ method: 'GET', path: '/xrpc/com.atproto.server.DESCRIBESERVER' }))
add('PATCH on a procedure', asAlice(() => ({ method: 'PATCH', nsid: 'com.atproto.server.createSession', json: {} })))
add('atproto-proxy header without a fragment', asAlice(() => q('app.bsky.feed.getTimeline', {}, { headers: { 'atproto-proxy': 'did:web:api.bsky.app' } })))
add('atproto-proxy header for a DID that does not resolve', asAlice(() => q('app.bsky.feed.getTimeline', {}, { headers: { 'atproto-proxy': 'did:web:nowhere.invalid#bsky_appview' } })))
add('atproto-proxy header on a protected method', asAlice(() => ({ method: 'POST', nsid: 'com.atproto.server.createAppPassword', json: { name: 'proxied' }, headers: { 'atproto-proxy': 'did:web:api.bsky.app#bsky_appview' } })))
add('app.bsky method through the AppView, no auth', () => q('app.bsky.feed.getTimeline'))
add('app.bsky method through the AppView (down)', asAlice(() => q('app.bsky.feed.getTimeline')))
add('chat method with an app password', (s) => q('chat.bsky.convo.listConvos', {}, { auth: `Bearer ${alice(s).appAccess}` }))
add('com.atproto.label.queryLabels', () => q('com.atproto.label.queryLabels', { uriPatterns: '*' }))
add('com.atproto.label.queryLabels: with a session', asAlice(() => q('com.atproto.label.queryLabels', { uriPatterns: '*' })))
add('com.atproto.moderation.createReport: with a session, no report service', (s) => p('com.atproto.moderation.createReport', { reasonType: 'com.atproto.moderation.defs#reasonSpam', subject: { $type: 'com.atproto.admin.defs#repoRef', did: s.users.bob.did } }, { auth: s.bearer('alice') }))
add('com.atproto.identity.resolveDid: with a session', asAlice(() => q('com.atproto.identity.resolveDid', { did: NOBODY })))
add('com.atproto.admin.getAccountInfo: no auth', (s) => q('com.atproto.admin.getAccountInfo', { did: alice(s).did }))
add('com.atproto.admin.getAccountInfo: admin auth', (s) => q('com.atproto.admin.getAccountInfo', { did: alice(s).did }, { auth: basic('admin', adminPassword) }))
add('com.atproto.admin.getAccountInfo: user bearer', (s) => q('com.atproto.admin.getAccountInfo', { did: alice(s).did }, { auth: s.bearer('alice') }))
add('com.atproto.admin.updateSubjectStatus: no auth', (s) => p('com.atproto.admin.updateSubjectStatus', { subject: { $type: 'com.atproto.admin.defs#repoRef', did: alice(s).did } }))

// --- com.atproto.admin: who may call, and each method's own refusals
{
  const admin = () => ({ auth: basic('admin', adminPassword) })
  const repoRef = (did) => ({ $type: 'com.atproto.admin.defs#repoRef', did })
  const adminMethods = [
    ['com.atproto.admin.getAccountInfo', 'GET', (s) => ({ did: alice(s).did })],
    ['com.atproto.admin.getAccountInfos', 'GET', (s) => ({ dids: alice(s).did })],
    ['com.atproto.admin.getInviteCodes', 'GET', () => ({})],
    ['com.atproto.admin.getSubjectStatus', 'GET', (s) => ({ did: alice(s).did })],
    ['com.atproto.admin.deleteAccount', 'POST', () => ({ did: NOBODY })],
    ['com.atproto.admin.disableAccountInvites', 'POST', () => ({ account: NOBODY })],
    ['com.atproto.admin.enableAccountInvites', 'POST', () => ({ account: NOBODY })],
    ['com.atproto.admin.disableInviteCodes', 'POST', () => ({ codes: ['nope'] })],
    ['com.atproto.admin.sendEmail', 'POST', () => ({ recipientDid: NOBODY, senderDid: NOBODY, content: 'hi' })],
    ['com.atproto.admin.updateAccountEmail', 'POST', () => ({ account: NOBODY, email: 'x@example.com' })],
    ['com.atproto.admin.updateAccountHandle', 'POST', () => ({ did: NOBODY, handle: 'nobody.test' })],
    ['com.atproto.admin.updateAccountPassword', 'POST', () => ({ did: NOBODY, password: 'x'.repeat(300) })],
    ['com.atproto.admin.updateSubjectStatus', 'POST', () => ({ subject: repoRef(NOBODY) })],
  ]
  for (const [nsid, method, input] of adminMethods) {
    const call = (opts) => (s) => (method === 'GET' ? q(nsid, input(s), opts?.(s)) : p(nsid, input(s), opts?.(s)))
    add(`${nsid}: no auth`, call())
    add(`${nsid}: wrong admin password`, call(() => ({ auth: basic('admin', 'wrong') })))
    add(`${nsid}: a user's session`, call((s) => ({ auth: s.bearer('alice') })))
  }
  const gai = 'com.atproto.admin.getAccountInfo'
  add(`${gai}: unknown DID`, () => q(gai, { did: NOBODY }, admin()))
  add(`${gai}: invalid DID`, () => q(gai, { did: 'not-a-did' }, admin()))
  add('com.atproto.admin.getAccountInfos: missing dids', () => q('com.atproto.admin.getAccountInfos', {}, admin()))
  const gic = 'com.atproto.admin.getInviteCodes'
  add(`${gic}: unknown sort`, () => q(gic, { sort: 'oldest' }, admin()))
  add(`${gic}: malformed cursor`, () => q(gic, { cursor: 'garbage' }, admin()))
  add(`${gic}: limit 0`, () => q(gic, { limit: 0 }, admin()))
  const gss = 'com.atproto.admin.getSubjectStatus'
  add(`${gss}: no subject`, () => q(gss, {}, admin()))
  add(`${gss}: unknown DID`, () => q(gss, { did: NOBODY }, admin()))
  add(`${gss}: blob without a did`, () => q(gss, { blob: MISSING_CID }, admin()))
  add(`${gss}: unknown blob`, (s) => q(gss, { did: alice(s).did, blob: MISSING_CID }, admin()))
  add(`${gss}: unknown record`, (s) => q(gss, { uri: `at://${alice(s).did}/app.bsky.feed.post/3jzfcijpj2z2a` }, admin()))
  const uss = 'com.atproto.admin.updateSubjectStatus'
  add(`${uss}: takedown and activate at once`, (s) => p(uss, { subject: repoRef(alice(s).did), takedown: { applied: true }, deactivated: { applied: false } }, admin()))
  add(`${uss}: unknown subject type`, (s) => p(uss, { subject: { $type: 'com.example.thing', did: alice(s).did }, takedown: { applied: false } }, admin()))
  add(`${uss}: subject missing`, () => p(uss, { takedown: { applied: false } }, admin()))
  add(`${uss}: takedown without applied`, (s) => p(uss, { subject: repoRef(alice(s).did), takedown: {} }, admin()))
  add('com.atproto.admin.disableInviteCodes: the admin account', () => p('com.atproto.admin.disableInviteCodes', { accounts: ['admin'] }, admin()))
  add('com.atproto.admin.sendEmail: unknown recipient', () => p('com.atproto.admin.sendEmail', { recipientDid: NOBODY, senderDid: NOBODY, content: 'hi' }, admin()))
  add('com.atproto.admin.sendEmail: missing content', (s) => p('com.atproto.admin.sendEmail', { recipientDid: alice(s).did, senderDid: alice(s).did }, admin()))
  add('com.atproto.admin.updateAccountEmail: unknown account', () => p('com.atproto.admin.updateAccountEmail', { account: NOBODY, email: 'x@example.com' }, admin()))
  add('com.atproto.admin.updateAccountPassword: too long', (s) => p('com.atproto.admin.updateAccountPassword', { did: alice(s).did, password: 'x'.repeat(300) }, admin()))
  add('com.atproto.admin.updateAccountHandle: invalid handle', (s) => p('com.atproto.admin.updateAccountHandle', { did: alice(s).did, handle: 'not a handle' }, admin()))
  add('com.atproto.admin.updateAccountHandle: handle taken', (s) => p('com.atproto.admin.updateAccountHandle', { did: alice(s).did, handle: handleOf('bob') }, admin()))
  add('com.atproto.admin.deleteAccount: invalid DID', () => p('com.atproto.admin.deleteAccount', { did: 'not-a-did' }, admin()))
}

// ---------------------------------------------------------------------------------------------
// Run.

function normalise(server, text) {
  if (text == null) return text
  let out = String(text)
  for (const [from, to] of server.replacements) out = out.replaceAll(from, to)
  return out
    .replace(/http:\/\/(localhost|127\.0\.0\.1):\d+/g, '<url>')
    .replace(/\bbaf[a-z2-7]{50,}\b/g, '<cid>')
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)\b/g, '<time>')
    .replace(/\b[2-7a-z]{13}\b/g, (m) => (/^[2-7a-j]/.test(m) && /\d/.test(m) ? '<tid>' : m))
}

/** The request as one line: method, path and query, Authorization (shortened), body (shortened). */
function describe(server, spec) {
  const url = new URL(spec.path ?? `/xrpc/${spec.nsid}`, 'http://x')
  for (const [k, v] of Object.entries(spec.params ?? {})) {
    if (v === undefined) continue
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one))
  }
  const method = spec.method ?? (spec.json !== undefined || spec.body !== undefined ? 'POST' : 'GET')
  const parts = [`${method} ${decodeURIComponent(url.pathname + url.search)}`]
  if (spec.auth != null) {
    const [scheme, ...rest] = spec.auth.split(' ')
    const value = rest.join(' ')
    parts.push(`auth: ${scheme}${rest.length ? ` ${value.length > 24 ? `${value.slice(0, 12)}…(${value.length})` : value}` : ''}`)
  }
  for (const [k, v] of Object.entries(spec.headers ?? {})) parts.push(`${k}: ${v}`)
  if (spec.contentType !== undefined) parts.push(`content-type: ${spec.contentType ?? '(none)'}`)
  let body = spec.json !== undefined ? JSON.stringify(spec.json) : spec.body !== undefined ? (Buffer.isBuffer(spec.body) ? `<${spec.body.length} bytes>` : spec.body) : null
  if (body != null) parts.push(`body: ${body.length > 160 ? `${body.slice(0, 150)}…(${body.length})` : body}`)
  return normalise(server, parts.join('  '))
}

const show = (a) => `${a.status} ${a.error ?? '-'}${a.message != null ? `  ${JSON.stringify(a.message)}` : a.body ? `  (body ${JSON.stringify(a.body.slice(0, 80))})` : ''}`

const aurora = await startAurora(plcUrl, {
  PDS_ADMIN_PASSWORD: adminPassword,
  PDS_SERVICE_HANDLE_DOMAINS: refEnv.PDS_SERVICE_HANDLE_DOMAINS ?? '.test',
  PDS_BLOB_UPLOAD_LIMIT: String(blobLimit),
  PDS_ACCEPTING_REPO_IMPORTS: 'true',
  ...(refEnv.PDS_BSKY_APP_VIEW_URL
    ? { PDS_BSKY_APP_VIEW_URL: refEnv.PDS_BSKY_APP_VIEW_URL, PDS_BSKY_APP_VIEW_DID: refEnv.PDS_BSKY_APP_VIEW_DID }
    : {}),
})
// Aurora's own answers must be ones its published document lists: the status, and the error
// name among that status's names.
const openapi = await (await fetch(`${aurora.url}/openapi.json`)).json()
function undocumented(spec, answer) {
  const path = openapi.paths[`/xrpc/${spec.nsid}`]
  if (!spec.nsid || !path || answer.status < 400 || answer.status === 0) return null
  const operation = path.get ?? path.post
  const response = operation.responses[String(answer.status)]
  if (!response) return `status ${answer.status} is not in the document`
  const names = response.content?.['application/json']?.schema?.properties?.error?.enum
  if (names && !names.includes(answer.error)) return `${answer.error} is not among the documented ${answer.status} errors`
  return null
}
const records = []
let undocumentedCount = 0
let same = 0
let differ = 0
let known = 0
try {
  const A = { name: 'aurora', url: aurora.url, jwtSecret: aurora.jwtSecret, code: () => lastMailedCode(aurora.dataDir) }
  const R = { name: 'reference', url: referenceUrl, jwtSecret: refEnv.PDS_JWT_SECRET, code: referenceCode }
  A.other = R
  R.other = A
  await setUp(A)
  await setUp(R)
  console.log(`aurora ${A.url}, reference ${R.url}, ${cases.length} cases (accounts *-${suffix}.test)\n`)

  for (const c of cases) {
    let a, r, request, specA
    try {
      const specR = c.request(R)
      request = describe(R, specR)
      specA = c.request(A)
      a = await send(A, specA)
      r = await send(R, specR)
    } catch (err) {
      console.log(`CRASH ${c.name}\n      ${err?.stack ?? err}`)
      differ++
      continue
    }
    for (const [x, s] of [[a, A], [r, R]]) {
      x.message = normalise(s, x.message)
      x.body = normalise(s, x.body)
    }
    const equal = a.status === r.status && a.error === r.error
    const sameMessage = a.message === r.message
    const verdict = equal ? 'same' : KNOWN[c.name] ? 'known' : 'DIFF'
    if (verdict === 'same') same++
    else if (verdict === 'known') known++
    else differ++
    records.push({ name: c.name, verdict, sameMessage, request, aurora: a, reference: r })
    console.log(`${verdict.padEnd(5)} ${c.name}${equal && !sameMessage ? '  (messages differ)' : ''}`)
    if (verdict !== 'same') console.log(`      > ${request}`)
    console.log(`      A ${show(a)}`)
    console.log(`      R ${show(r)}`)
    if (verdict === 'known') console.log(`      known: ${KNOWN[c.name]}`)
    const gap = undocumented(specA, a)
    if (gap) {
      undocumentedCount++
      console.log(`UNDOCUMENTED ${c.name}: ${gap}`)
    }
  }
} finally {
  await aurora.stop()
}
if (process.env.ERRORS_JSON) writeFileSync(process.env.ERRORS_JSON, JSON.stringify(records, null, 2))
const stale = Object.keys(KNOWN).filter((name) => !records.some((r) => r.name === name && r.verdict === 'known'))
for (const name of stale) console.log(`stale KNOWN entry (the case now matches or no longer exists): ${name}`)
console.log(`\n${same} same, ${differ} differ${known ? `, ${known} known` : ''}, ${undocumentedCount} undocumented in /openapi.json`)
process.exit(differ === 0 && stale.length === 0 && undocumentedCount === 0 && same > 0 ? 0 : 1)
