// End-to-end: the official @atproto/api client and the official did:plc directory
// (@did-plc/server, in memory) against the real Aurora Locus binary, all on loopback.
// Usage: node run.mjs [path/to/aurora-locus]   (default ../../target/release/aurora-locus)
// Prints "N passed, M failed" and exits non-zero on any failure.
import { AtpAgent } from '@atproto/api'
import { IdResolver } from '@atproto/identity'
import { verifyRepoCar, verifyProofs, verifyDiffCar, readCarWithRoot, MemoryBlockstore, Repo } from '@atproto/repo'
import { Firehose } from '@atproto/sync'
import { startPlc, startAurora, startAppView, expiredAccessToken, lastMailedCode, test, assert, expectXrpcError, finish } from './harness.mjs'
const plcServer = await startPlc()
const appView = await startAppView(plcServer.url)
const aurora = await startAurora(plcServer.url, { PDS_BSKY_APP_VIEW_URL: appView.url, PDS_BSKY_APP_VIEW_DID: appView.did })
try {
  const agent = new AtpAgent({ service: aurora.url })
  const handle = 'alice.test'
  const password = 'alice-password-1'
  let did

  await test('describeServer lists the handle domain', async () => {
    const { data } = await agent.com.atproto.server.describeServer()
    assert(data.availableUserDomains.includes('.test'), JSON.stringify(data))
    assert(data.did === 'did:web:localhost', data.did)
  })

  await test('createAccount signs up and opens a session', async () => {
    const { data } = await agent.createAccount({ handle, email: 'alice@example.com', password })
    did = data.did
    assert(did.startsWith('did:plc:'), did)
    assert(agent.session?.handle === handle, JSON.stringify(agent.session))
    assert(agent.session?.accessJwt, 'no access token stored')
  })

  await test('the PLC directory serves a DID document naming this PDS, key and handle', async () => {
    const doc = await (await fetch(`${plcServer.url}/${encodeURIComponent(did)}`)).json()
    assert(doc.id === did, JSON.stringify(doc))
    assert(doc.alsoKnownAs?.[0] === `at://${handle}`, JSON.stringify(doc.alsoKnownAs))
    const pds = doc.service?.find((s) => s.id === '#atproto_pds')
    assert(pds?.serviceEndpoint === aurora.url, JSON.stringify(doc.service))
    // Directory versions write the id relative (`#atproto`) or absolute (`<did>#atproto`).
    const key = doc.verificationMethod?.find((m) => m.id === '#atproto' || m.id === `${did}#atproto`)
    assert(key?.publicKeyMultibase?.startsWith('z'), JSON.stringify(doc.verificationMethod))
  })

  await test('resolveHandle finds the new account', async () => {
    const { data } = await agent.com.atproto.identity.resolveHandle({ handle })
    assert(data.did === did, JSON.stringify(data))
  })

  await test('login by handle', async () => {
    const other = new AtpAgent({ service: aurora.url })
    await other.login({ identifier: handle, password })
    assert(other.session?.did === did, JSON.stringify(other.session))
    const { data } = await other.com.atproto.server.getSession()
    assert(data.handle === handle && data.email === 'alice@example.com', JSON.stringify(data))
  })

  await test('login by email', async () => {
    const other = new AtpAgent({ service: aurora.url })
    await other.login({ identifier: 'alice@example.com', password })
    assert(other.session?.did === did, JSON.stringify(other.session))
  })

  await test('a wrong password is refused', async () => {
    const other = new AtpAgent({ service: aurora.url })
    await expectXrpcError(other.login({ identifier: handle, password: 'nope' }), 401)
  })

  await test('refreshSession rotates the tokens', async () => {
    const before = agent.session.refreshJwt
    await agent.sessionManager.refreshSession()
    assert(agent.session.refreshJwt !== before, 'refresh token unchanged')
    const { data } = await agent.com.atproto.server.getSession()
    assert(data.did === did, JSON.stringify(data))
  })

  await test('an expired access token is refreshed transparently by the client', async () => {
    const other = new AtpAgent({ service: aurora.url })
    await other.login({ identifier: handle, password })
    const session = { ...other.session, accessJwt: expiredAccessToken(aurora.jwtSecret, did) }
    const resumed = new AtpAgent({ service: aurora.url })
    await resumed.sessionManager.resumeSession(session).catch(() => {})
    const { data } = await resumed.com.atproto.server.getSession()
    assert(data.did === did, JSON.stringify(data))
    assert(resumed.session.accessJwt !== session.accessJwt, 'the client did not refresh')
  })

  await test('app passwords: create, log in with, list, revoke', async () => {
    const { data: created } = await agent.com.atproto.server.createAppPassword({ name: 'e2e phone' })
    assert(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(created.password), created.password)
    const app = new AtpAgent({ service: aurora.url })
    await app.login({ identifier: handle, password: created.password })
    await expectXrpcError(app.com.atproto.server.createAppPassword({ name: 'nested' }), 400, 'InvalidToken')
    const { data: listed } = await agent.com.atproto.server.listAppPasswords()
    assert(listed.passwords.some((p) => p.name === 'e2e phone'), JSON.stringify(listed))
    await agent.com.atproto.server.revokeAppPassword({ name: 'e2e phone' })
    await expectXrpcError(new AtpAgent({ service: aurora.url }).login({ identifier: handle, password: created.password }), 401)
  })

  await test('email confirmation with the mailed code', async () => {
    await agent.com.atproto.server.requestEmailConfirmation()
    const token = lastMailedCode(aurora.dataDir)
    await agent.com.atproto.server.confirmEmail({ email: 'alice@example.com', token })
    const { data } = await agent.com.atproto.server.getSession()
    assert(data.emailConfirmed === true, JSON.stringify(data))
  })

  await test('updateHandle changes the handle in the DID document and in resolution', async () => {
    await agent.com.atproto.identity.updateHandle({ handle: 'alice2.test' })
    const doc = await (await fetch(`${plcServer.url}/${encodeURIComponent(did)}`)).json()
    assert(doc.alsoKnownAs?.[0] === 'at://alice2.test', JSON.stringify(doc.alsoKnownAs))
    const { data } = await agent.com.atproto.identity.resolveHandle({ handle: 'alice2.test' })
    assert(data.did === did, JSON.stringify(data))
    const { data: session } = await agent.com.atproto.server.getSession()
    assert(session.handle === 'alice2.test', JSON.stringify(session))
    await agent.com.atproto.identity.updateHandle({ handle })
  })

  await test('getServiceAuth issues a token for another service', async () => {
    const { data } = await agent.com.atproto.server.getServiceAuth({ aud: 'did:web:api.example.com', lxm: 'app.bsky.feed.getTimeline' })
    const claims = JSON.parse(Buffer.from(data.token.split('.')[1], 'base64url').toString())
    assert(claims.iss === did && claims.aud === 'did:web:api.example.com', JSON.stringify(claims))
  })

  await test('records: post, get, list, put, delete, applyWrites', async () => {
    const { uri, cid } = await agent.post({ text: 'hello from the official client', createdAt: new Date().toISOString() })
    assert(uri.startsWith(`at://${did}/app.bsky.feed.post/`), uri)
    const rkey = uri.split('/').pop()
    const { data: got } = await agent.com.atproto.repo.getRecord({ repo: handle, collection: 'app.bsky.feed.post', rkey })
    assert(got.cid === cid && got.value.text === 'hello from the official client', JSON.stringify(got))
    await agent.com.atproto.repo.putRecord({
      repo: did, collection: 'app.bsky.actor.profile', rkey: 'self',
      record: { $type: 'app.bsky.actor.profile', displayName: 'Alice' },
    })
    const { data: profile } = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.actor.profile', rkey: 'self' })
    assert(profile.value.displayName === 'Alice', JSON.stringify(profile))
    const { data: batch } = await agent.com.atproto.repo.applyWrites({
      repo: did,
      writes: [1, 2, 3].map((n) => ({
        $type: 'com.atproto.repo.applyWrites#create', collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: `batch ${n}`, createdAt: new Date().toISOString() },
      })),
    })
    assert(batch.results?.length === 3 && batch.commit?.rev, JSON.stringify(batch))
    const { data: listed } = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post', limit: 10 })
    assert(listed.records.length === 4, JSON.stringify(listed.records.map((r) => r.value.text)))
    await agent.deletePost(uri)
    await expectXrpcError(agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey }), 400, 'RecordNotFound')
    const { data: described } = await agent.com.atproto.repo.describeRepo({ repo: did })
    assert(described.collections.includes('app.bsky.actor.profile'), JSON.stringify(described))
  })

  await test('uploadBlob and a post embedding the image', async () => {
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAACklEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==', 'base64')
    const { data } = await agent.uploadBlob(png, { encoding: 'image/png' })
    assert(data.blob.mimeType === 'image/png' && data.blob.size === png.length, JSON.stringify(data))
    const { uri } = await agent.post({
      text: 'with a picture', createdAt: new Date().toISOString(),
      embed: { $type: 'app.bsky.embed.images', images: [{ alt: 'a pixel', image: data.blob }] },
    })
    const { data: got } = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey: uri.split('/').pop() })
    assert(got.value.embed.images[0].image.ref.toString() === data.blob.ref.toString(), JSON.stringify(got.value.embed))
  })

  await test('sync.getRepo exports a CAR that importRepo takes back', async () => {
    const { data: car } = await agent.com.atproto.sync.getRepo({ did })
    assert(car instanceof Uint8Array && car.length > 100, `CAR of ${car?.length} bytes`)
    await agent.com.atproto.repo.importRepo(car, { encoding: 'application/vnd.ipld.car' })
    const { data: listed } = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post' })
    assert(listed.records.length >= 4, JSON.stringify(listed.records.length))
    const { data: status } = await agent.com.atproto.server.checkAccountStatus()
    assert(status.indexedRecords === listed.records.length + 1 && status.expectedBlobs === 1 && status.importedBlobs === 1, JSON.stringify(status))
  })

  await test('@atproto/repo verifies getRepo and getRecord proofs (inclusion and absence)', async () => {
    const idResolver = new IdResolver({ plcUrl: plcServer.url, fetch: globalThis.fetch })
    const signingKey = await idResolver.did.resolveAtprotoKey(did, true)
    const { data: car } = await agent.com.atproto.sync.getRepo({ did })
    const verified = await verifyRepoCar(car, did, signingKey)
    assert(verified.creates.length >= 4, `verified ${verified.creates.length} records`)
    const { data: listed } = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post', limit: 1 })
    const rkey = listed.records[0].uri.split('/').pop()
    const { data: proof } = await agent.com.atproto.sync.getRecord({ did, collection: 'app.bsky.feed.post', rkey })
    const { CID } = await import('multiformats/cid')
    const present = await verifyProofs(proof, [{ collection: 'app.bsky.feed.post', rkey, cid: CID.parse(listed.records[0].cid) }], did, signingKey)
    assert(present.verified.length === 1, JSON.stringify(present))
    const { data: absentProof } = await agent.com.atproto.sync.getRecord({ did, collection: 'app.bsky.feed.post', rkey: '2222222222222' })
    const absent = await verifyProofs(absentProof, [{ collection: 'app.bsky.feed.post', rkey: '2222222222222', cid: null }], did, signingKey)
    assert(absent.verified.length === 1, JSON.stringify(absent))
  })

  await test('getRepo since a rev: the diff verifies and, applied to the older export, gives the latest state', async () => {
    const idResolver = new IdResolver({ plcUrl: plcServer.url, fetch: globalThis.fetch })
    const signingKey = await idResolver.did.resolveAtprotoKey(did, true)
    const { data: oldCar } = await agent.com.atproto.sync.getRepo({ did })
    const old = await readCarWithRoot(oldCar)
    const oldStore = new MemoryBlockstore(old.blocks)
    const oldRepo = await Repo.load(oldStore, old.root)
    const { data: latest } = await agent.com.atproto.sync.getLatestCommit({ did })
    // Creates, an update and a delete after the export.
    const first = await agent.post({ text: 'after the export 1', createdAt: new Date().toISOString() })
    await agent.post({ text: 'after the export 2', createdAt: new Date().toISOString() })
    await agent.com.atproto.repo.putRecord({ repo: did, collection: 'app.bsky.actor.profile', rkey: 'self', record: { $type: 'app.bsky.actor.profile', displayName: 'Alice after' } })
    await agent.deletePost(first.uri)
    const { data: diffCar } = await agent.com.atproto.sync.getRepo({ did, since: latest.rev })
    assert(diffCar.length < oldCar.length, `diff of ${diffCar.length} bytes, full export ${oldCar.length}`)
    const diff = await verifyDiffCar(oldRepo, diffCar, did, signingKey)
    const firstRkey = first.uri.split('/').pop()
    assert(diff.writes.some((w) => w.action === 'create') && !diff.writes.some((w) => w.rkey === firstRkey), JSON.stringify(diff.writes.map((w) => [w.action, w.collection, w.rkey])))
    const update = await readCarWithRoot(diffCar)
    const merged = new MemoryBlockstore(old.blocks)
    for (const [cid, bytes] of update.blocks) await merged.putBlock(cid, bytes)
    const applied = await (await Repo.load(merged, update.root)).getContents()
    const { data: fullCar } = await agent.com.atproto.sync.getRepo({ did })
    const full = await readCarWithRoot(fullCar)
    assert(full.root.equals(update.root), 'the diff ends at the latest commit')
    const expected = await (await Repo.load(new MemoryBlockstore(full.blocks), full.root)).getContents()
    const canon = (contents) => JSON.stringify(Object.keys(contents).sort().map((c) => [c, Object.keys(contents[c]).sort().map((r) => [r, JSON.stringify(contents[c][r])])]))
    assert(canon(applied) === canon(expected), 'old export + diff = latest state')
    assert(!JSON.stringify(applied).includes('after the export 1'), 'the deleted post is gone')
  })

  await test('@atproto/sync Firehose consumes subscribeRepos and validates commits', async () => {
    const idResolver = new IdResolver({ plcUrl: plcServer.url, fetch: globalThis.fetch })
    const seen = []
    const errors = []
    const firehose = new Firehose({
      idResolver,
      service: aurora.url.replace('http://', 'ws://'),
      getCursor: () => 0,
      unauthenticatedCommits: false,
      handleEvent: async (evt) => { seen.push(evt) },
      onError: (err) => { errors.push(err) },
    })
    firehose.start()
    const { uri } = await agent.post({ text: 'for the firehose', createdAt: new Date().toISOString() })
    const deadline = Date.now() + 10_000
    while (!seen.some((e) => e.event === 'create' && e.uri.toString() === uri) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
    }
    await firehose.destroy()
    assert(errors.length === 0, `firehose errors: ${errors.map((e) => e.message).join('; ')}`)
    assert(seen.some((e) => e.event === 'create' && e.uri.toString() === uri), `saw ${seen.length} events, not the new post`)
    assert(seen.some((e) => e.event === 'identity') && seen.some((e) => e.event === 'account'), 'identity and account events')
  })

  await test('preferences round trip', async () => {
    await agent.app.bsky.actor.putPreferences({ preferences: [{ $type: 'app.bsky.actor.defs#adultContentPref', enabled: true }] })
    const { data } = await agent.app.bsky.actor.getPreferences()
    assert(data.preferences.length === 1 && data.preferences[0].enabled === true, JSON.stringify(data))
  })

  await test('app.bsky reads go through Aurora to the AppView, merged with what the user just wrote', async () => {
    // The stand-in answers as of an old rev: the profile saved earlier in this run and a post
    // made now are merged in by Aurora.
    const { uri } = await agent.post({ text: 'posted just before reading the timeline', createdAt: new Date().toISOString() })
    const { data: profile } = await agent.getProfile({ actor: did })
    assert(profile.did === did && profile.displayName === 'Alice after' && profile.followersCount === 3, JSON.stringify(profile))
    const { data: timeline, headers } = await agent.getTimeline({ limit: 10 })
    assert(timeline.cursor === 'next-page', JSON.stringify(timeline))
    assert(timeline.feed[0]?.post.uri === uri && timeline.feed[0].post.author.did === did, JSON.stringify(timeline.feed[0]))
    assert(headers['atproto-repo-rev'] === '3laaaaaaaaaa2', `headers ${JSON.stringify(headers)}`)
    const calls = appView.seen.filter((c) => c.iss === did).map((c) => c.lxm)
    assert(calls.includes('app.bsky.actor.getProfile') && calls.includes('app.bsky.feed.getTimeline'), JSON.stringify(appView.seen))
  })

  await test('logout ends the session', async () => {
    const other = new AtpAgent({ service: aurora.url })
    await other.login({ identifier: handle, password })
    const refreshJwt = other.session.refreshJwt
    await other.logout()
    const res = await fetch(`${aurora.url}/xrpc/com.atproto.server.refreshSession`, {
      method: 'POST',
      headers: { authorization: `Bearer ${refreshJwt}` },
    })
    const body = await res.json()
    assert(res.status === 400 && body.error === 'ExpiredToken', `refresh after logout answered ${res.status} ${JSON.stringify(body)}`)
  })
} finally {
  await aurora.stop()
  await appView.close()
  await plcServer.close()
}

finish()
