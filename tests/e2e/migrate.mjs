// Account migration between Aurora and the reference PDS (@atproto/pds), both ways, with the
// standard client-driven flow and the official client, over one shared did:plc directory.
// Usage: node migrate.mjs [path/to/aurora-locus] <reference-runner-dir>
//   The reference runner (../shared/reference-pds, copied, set up and started with start.sh)
//   serves PLC on localhost:$REFERENCE_PLC_PORT (2582) and the reference PDS on
//   localhost:$REFERENCE_PDS_PORT (2583).
// Prints "N passed, M failed" and exits non-zero on any failure.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { AtpAgent } from '@atproto/api'
import { IdResolver } from '@atproto/identity'
import { verifyRepoCar } from '@atproto/repo'
import { startAurora, lastMailedCode, test, assert, finish, referenceRunner } from './harness.mjs'

const { runner, plcUrl, referenceUrl } = referenceRunner('node migrate.mjs <aurora-locus binary> <reference runner dir>')
// The reference mails through a JSON transport when no SMTP server is set; its codes are read
// from its own database, with the runner's copy of better-sqlite3.
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

const idResolver = new IdResolver({ plcUrl, fetch: globalThis.fetch })
async function plcData(did) {
  const res = await fetch(`${plcUrl}/${did}/data`)
  assert(res.ok, `PLC data for ${did}: ${res.status}`)
  return res.json()
}

/** An account with a post, an image post and preferences on `agent`'s server. */
async function populate(agent, handle, email, password) {
  await agent.createAccount({ handle, email, password })
  for (let i = 0; i < 3; i++) {
    await agent.post({ text: `${handle} post ${i}`, createdAt: new Date().toISOString() })
  }
  const image = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(`${handle} pixels`)])
  const { data: uploaded } = await agent.uploadBlob(image, { encoding: 'image/png' })
  await agent.post({
    text: `${handle} with an image`,
    createdAt: new Date().toISOString(),
    embed: { $type: 'app.bsky.embed.images', images: [{ image: uploaded.blob, alt: 'pixels' }] },
  })
  await agent.app.bsky.actor.putPreferences({
    preferences: [{ $type: 'app.bsky.actor.defs#adultContentPref', enabled: true }],
  })
  return { did: agent.session.did, blob: uploaded.blob.ref.toString() }
}

/**
 * Moves `did` from `from` (logged in) to a new account on `toUrl`, the way a client does it.
 * `signingCode` reads the emailed PLC-operation code of the old server.
 */
async function migrate({ from, toUrl, toDid, did, handle, email, password, signingCode }) {
  const to = new AtpAgent({ service: toUrl })
  const { data: auth } = await from.com.atproto.server.getServiceAuth({ aud: toDid, lxm: 'com.atproto.server.createAccount' })
  await to.com.atproto.server.createAccount({ did, handle, email, password }, { headers: { authorization: `Bearer ${auth.token}` } })
  await to.login({ identifier: did, password })
  const { data: before } = await to.com.atproto.server.checkAccountStatus()
  assert(before.activated === false, `the new account starts deactivated: ${JSON.stringify(before)}`)

  const { data: car } = await from.com.atproto.sync.getRepo({ did })
  await to.com.atproto.repo.importRepo(car, { encoding: 'application/vnd.ipld.car' })
  let cursor
  do {
    const { data: missing } = await to.com.atproto.repo.listMissingBlobs({ cursor, limit: 100 })
    for (const blob of missing.blobs) {
      const res = await from.com.atproto.sync.getBlob({ did, cid: blob.cid })
      await to.com.atproto.repo.uploadBlob(res.data, { encoding: res.headers['content-type'] })
    }
    cursor = missing.cursor
  } while (cursor)
  const { data: prefs } = await from.app.bsky.actor.getPreferences()
  await to.app.bsky.actor.putPreferences(prefs)

  const { data: credentials } = await to.com.atproto.identity.getRecommendedDidCredentials()
  await from.com.atproto.identity.requestPlcOperationSignature()
  const { data: signed } = await from.com.atproto.identity.signPlcOperation({ token: signingCode(did), ...credentials })
  await to.com.atproto.identity.submitPlcOperation({ operation: signed.operation })
  await to.com.atproto.server.activateAccount()
  await from.com.atproto.server.deactivateAccount({})
  return to
}

/** Checks that `did` now lives on `agent`'s server, complete and writable. */
async function assertMoved(agent, serviceUrl, did, blob, handle) {
  const data = await plcData(did)
  assert(data.services.atproto_pds.endpoint === serviceUrl, `PDS endpoint ${data.services.atproto_pds.endpoint}`)
  assert(data.alsoKnownAs[0] === `at://${handle}`, `handle ${data.alsoKnownAs}`)
  const { data: status } = await agent.com.atproto.server.checkAccountStatus()
  assert(status.activated && status.validDid, `status ${JSON.stringify(status)}`)
  assert(status.expectedBlobs === 1 && status.importedBlobs === 1, `blobs ${JSON.stringify(status)}`)
  const { data: listed } = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post' })
  assert(listed.records.length === 4, `${listed.records.length} posts`)
  const { data: prefs } = await agent.app.bsky.actor.getPreferences()
  assert(prefs.preferences.length === 1, JSON.stringify(prefs))
  const got = await agent.com.atproto.sync.getBlob({ did, cid: blob })
  assert(got.data.length > 8, 'the image is served')
  // The first commit on the new server is signed with the key the DID document now names.
  await agent.post({ text: 'hello from the new server', createdAt: new Date().toISOString() })
  const key = await idResolver.did.resolveAtprotoKey(did, true)
  const { data: car } = await agent.com.atproto.sync.getRepo({ did })
  const verified = await verifyRepoCar(car, did, key)
  assert(verified.creates.filter((c) => c.collection === 'app.bsky.feed.post').length === 5, 'five posts verify')
}

const aurora = await startAurora(plcUrl)
try {
  const auroraDid = (await (await fetch(`${aurora.url}/xrpc/com.atproto.server.describeServer`)).json()).did
  const referenceDid = (await (await fetch(`${referenceUrl}/xrpc/com.atproto.server.describeServer`)).json()).did

  await test('an account moves from the reference PDS to Aurora', async () => {
    const from = new AtpAgent({ service: referenceUrl })
    const { did, blob } = await populate(from, 'carol.test', 'carol@example.com', 'carol-password')
    const to = await migrate({
      from,
      toUrl: aurora.url,
      toDid: auroraDid,
      did,
      handle: 'carol-moved.test',
      email: 'carol@example.com',
      password: 'carol-password',
      signingCode: (d) => referenceCode(d, 'plc_operation'),
    })
    await assertMoved(to, aurora.url, did, blob, 'carol-moved.test')
    const { data: old } = await from.com.atproto.server.checkAccountStatus()
    assert(old.activated === false, 'the old account is deactivated')
  })

  await test('an account moves from Aurora to the reference PDS', async () => {
    const from = new AtpAgent({ service: aurora.url })
    const { did, blob } = await populate(from, 'dave.test', 'dave@example.com', 'dave-password')
    const to = await migrate({
      from,
      toUrl: referenceUrl,
      toDid: referenceDid,
      did,
      handle: 'dave-moved.test',
      email: 'dave@example.com',
      password: 'dave-password',
      signingCode: () => lastMailedCode(aurora.dataDir),
    })
    await assertMoved(to, referenceUrl, did, blob, 'dave-moved.test')
    const { data: old } = await from.com.atproto.server.checkAccountStatus()
    assert(old.activated === false, 'the old account is deactivated')
  })
} finally {
  await aurora.stop()
}
finish()
