// A storefront's session through Freshcom's SDK request building, against a running server.
//
// Env: BASE_URL (http://host:port), PRT (the account's publishable key), ACCOUNT_ID,
// JWT_PRIVATE_KEY_FILE (the server's signing key, to forge an expired copy of a real token),
// and REUSE_GRACE_SECONDS (the server's refresh token reuse grace window, 0 if not given).
// The tests share one session and run in order, as a storefront would make the calls.
import assert from 'node:assert/strict'
import { randomUUID, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { createSdk } from './sdk.mjs'

const { BASE_URL, PRT, ACCOUNT_ID, JWT_PRIVATE_KEY_FILE } = process.env
const REUSE_GRACE_SECONDS = Number(process.env.REUSE_GRACE_SECONDS ?? 0)
if (!BASE_URL || !PRT || !ACCOUNT_ID || !JWT_PRIVATE_KEY_FILE) {
  throw new Error('Set BASE_URL, PRT, ACCOUNT_ID and JWT_PRIVATE_KEY_FILE')
}

const API_ROOT_URL = `${BASE_URL}/v1`
const TIMEOUT = { timeout: 20_000 }
const PASSWORD = 'roy-bao-shops-1'
const EMAIL = `roy-${randomUUID()}@example.com`

const sdk = createSdk({ apiRootUrl: API_ROOT_URL })
const wire = recordWire(sdk)
const refreshed = []
sdk.accessTokenRefreshed = token => refreshed.push(token)

const session = {}

test('createToken trades the publishable key for a guest token, form-encoded', TIMEOUT, async () => {
  const token = await sdk.createToken({ grant_type: 'refresh_token', refresh_token: PRT })

  assert.equal(token.token_type, 'bearer')
  assert.equal(token.refresh_token, PRT)
  assert.equal(token.scope, `aid:${ACCOUNT_ID}`)
  assert.equal(typeof token.access_token, 'string')
  const [request] = wire.take()
  assert.equal(request.method, 'post')
  assert.deepEqual(request.target, { path: '/v1/token', query: { locale: 'en' } })
  assert.equal(request.headers['Content-Type'], 'application/x-www-form-urlencoded')
  assert.equal(request.body, `grant_type=refresh_token&refresh_token=${PRT}`)
  sdk.setAccessToken(token.access_token)
  session.guestToken = token.access_token
})

test('createCustomer without a type registers the customer and its user', TIMEOUT, async () => {
  const fields = { status: 'registered', firstName: 'Roy', lastName: 'Bao', email: EMAIL, username: EMAIL, password: PASSWORD }

  const { data: customer } = await sdk.createCustomer(fields)

  const [request] = wire.take()
  assert.equal(request.status, 201)
  assert.equal(request.headers.Authorization, `Bearer ${session.guestToken}`)
  assert.equal(request.headers['Content-Type'], 'application/vnd.api+json')
  assert.deepEqual(JSON.parse(request.body), { data: { attributes: fields, relationships: {} } })
  assert.equal(customer.type, 'Customer')
  assert.equal(customer.status, 'registered')
  assert.equal(customer.email, EMAIL)
  assert.equal(customer.name, 'Roy Bao')
  assert.equal(customer.user.type, 'User')
  assert.equal(customer.password, undefined)
  assert.equal(customer.username, undefined)
  session.customerId = customer.id
})

test('createToken with the password grant and scope aid:<account> signs the customer in', TIMEOUT, async () => {
  const token = await sdk.createToken({ grant_type: 'password', username: EMAIL, password: PASSWORD, scope: `aid:${ACCOUNT_ID}` })

  assert.match(token.refresh_token, /^urt-live-/)
  assert.equal(token.scope, `aid:${ACCOUNT_ID}`)
  const [request] = wire.take()
  assert.equal(request.headers.Authorization, `Bearer ${session.guestToken}`, 'the SDK sends its stale bearer')
  sdk.setAccessToken(token.access_token)
  sdk.setRefreshToken(token.refresh_token)
  session.accessToken = token.access_token
  session.refreshTokens = [token.refresh_token]
})

test('retrieveCurrentCustomer reads the signed-in customer, its user included', TIMEOUT, async () => {
  const { data: customer } = await sdk.retrieveCurrentCustomer({ include: 'user,orders' })

  const [request] = wire.take()
  assert.deepEqual(request.target, { path: '/v1/customer', query: { locale: 'en', include: 'user,orders' } })
  assert.equal(customer.id, session.customerId)
  assert.equal(customer.email, EMAIL)
  assert.match(customer.insertedAt, /Z$/)
  // Resolved from included: the whole user, not only {id, type}.
  assert.equal(customer.user.type, 'User')
  assert.equal(customer.user.email, EMAIL)
  assert.deepEqual(customer.orders, [])
  session.customer = customer
})

test('updateCustomer PATCHes the whole deserialized customer back', TIMEOUT, async () => {
  const fields = { ...session.customer, lastName: 'Bao-Smith', phoneNumber: '+1 555 0100', customData: { tier: 'gold' } }

  const { data: updated } = await sdk.updateCustomer(session.customerId, fields)

  const [request] = wire.take()
  const sent = JSON.parse(request.body).data
  assert.equal(request.status, 200)
  assert.equal(sent.id, session.customerId)
  assert.equal(sent.type, 'Customer')
  for (const readOnly of ['id', 'insertedAt', 'updatedAt', 'emailVerified', 'orders']) {
    assert.ok(readOnly in sent.attributes, `the SDK sends ${readOnly} as an attribute`)
  }
  assert.deepEqual(sent.relationships.user.data, { id: session.customer.user.id, type: 'User' })
  assert.equal(updated.id, session.customerId)
  assert.equal(updated.lastName, 'Bao-Smith')
  assert.equal(updated.phoneNumber, '+1 555 0100')
  assert.deepEqual(updated.customData, { tier: 'gold' })
  assert.equal(updated.status, 'registered')
  assert.equal(updated.insertedAt, session.customer.insertedAt)
  const { data: reread } = await sdk.retrieveCurrentCustomer()
  assert.equal(reread.lastName, 'Bao-Smith')
  session.customer = reread
  wire.take()
})

test('createCustomer rejects a 422 whose errors deserializeErrors groups by field', TIMEOUT, async () => {
  const guest = createSdk({ apiRootUrl: API_ROOT_URL })
  guest.setAccessToken((await guest.createToken({ grant_type: 'refresh_token', refresh_token: PRT })).access_token)
  const another = `another-${randomUUID()}@example.com`
  const cases = [
    [{ status: 'registered', firstName: 'Ann', email: EMAIL.toUpperCase(), password: PASSWORD }, { email: ['taken'] }],
    [{ status: 'registered', firstName: 'Ann', email: another, password: 'short' }, { password: ['length'] }],
    [{ status: 'registered' }, { email: ['required'], password: ['required'] }]
  ]
  for (const [fields, expected] of cases) {
    const response = await rejection(guest.createCustomer(fields))
    assert.equal(response.status, 422)
    assert.deepEqual(codesByField(response.errors), expected, JSON.stringify(fields))
  }
})

test('updateCustomer rejects a 422 grouped by field for the whole object with bad values', TIMEOUT, async () => {
  const fields = { ...session.customer, email: 'not-an-email', username: 'ab' }

  const response = await rejection(sdk.updateCustomer(session.customerId, fields))

  assert.equal(response.status, 422)
  assert.deepEqual(codesByField(response.errors), { email: ['format'], username: ['length'] })
  assert.equal(response.errors.email[0].source.pointer, '/data/attributes/email')
  wire.take()
})

test('on a 401 the interceptor refreshes once, retries, and keeps the rotated refresh token', TIMEOUT, async () => {
  sdk.setAccessToken('garbage')

  const { data: customer } = await sdk.retrieveCurrentCustomer()

  assert.equal(customer.id, session.customerId)
  const [rejected, refresh, retried] = wire.take()
  assert.equal(rejected.status, 401)
  assert.equal(rejected.headers.Authorization, 'Bearer garbage')
  assert.equal(refresh.status, 200)
  assert.deepEqual(refresh.target, { path: '/v1/token', query: { locale: 'en' } })
  assert.equal(refresh.headers.Authorization, 'Bearer garbage', 'the refresh carries the stale bearer')
  assert.equal(refresh.body, `refresh_token=${session.refreshTokens[0]}&grant_type=refresh_token`)
  assert.equal(retried.status, 200)
  assert.equal(retried.headers.Authorization, `Bearer ${refreshed[0].access_token}`)
  assert.equal(refreshed.length, 1)
  assert.match(refreshed[0].refresh_token, /^urt-live-/)
  assert.notEqual(refreshed[0].refresh_token, session.refreshTokens[0], 'rotated')
  assert.equal(sdk.refreshToken, refreshed[0].refresh_token)
  session.refreshTokens.push(sdk.refreshToken)
})

test('an expired access token is refreshed with the rotated refresh token and the PATCH retried', TIMEOUT, async () => {
  const current = refreshed[0].access_token
  sdk.setAccessToken(resigned(current, { exp: now() + 600 }))
  await sdk.retrieveCurrentCustomer()
  assert.equal(refreshed.length, 1, 'a re-signed live token is accepted, so only expiry differs below')
  wire.take()

  sdk.setAccessToken(resigned(current, { iat: now() - 7200, exp: now() - 3600 }))
  const { data: updated } = await sdk.updateCustomer(session.customerId, { label: 'vip' })

  assert.equal(updated.label, 'vip')
  const [rejected, refresh, retried] = wire.take()
  assert.equal(rejected.status, 401)
  assert.equal(refresh.body, `refresh_token=${session.refreshTokens[1]}&grant_type=refresh_token`)
  assert.equal(retried.method, 'patch')
  assert.equal(retried.status, 200)
  assert.equal(retried.body, rejected.body)
  assert.equal(refreshed.length, 2)
  assert.notEqual(sdk.refreshToken, session.refreshTokens[1], 'rotated again')
  session.refreshTokens.push(sdk.refreshToken)
})

test('reusing a rotated refresh token ends the session, and the interceptor gives up', TIMEOUT, async () => {
  // Replayed at once, a rotated token is refused but keeps the session (a client's concurrent
  // refresh); a replay after the server's reuse grace window is a leak, and revokes the family.
  await new Promise(resolve => setTimeout(resolve, (REUSE_GRACE_SECONDS + 0.5) * 1000))
  const spent = await rejection(sdk.createToken({ grant_type: 'refresh_token', refresh_token: session.refreshTokens[0] }))
  assert.equal(spent.error, 'invalid_grant')
  wire.take()

  sdk.setAccessToken('garbage')
  const failure = await rejection(sdk.retrieveCurrentCustomer())

  assert.equal(failure.error, 'invalid_grant', 'the reuse revoked the whole family')
  assert.deepEqual(wire.take().map(r => [r.method, r.target.path, r.status]), [
    ['get', '/v1/customer', 401],
    ['post', '/v1/token', 400]
  ])
  assert.equal(refreshed.length, 2)
})

// Each request as it left axios (headers and body as sent), with its path and query as the
// server got them and the status it answered.
function recordWire (sdk) {
  const requests = []
  const send = sdk.http.defaults.adapter
  sdk.http.defaults.adapter = config => {
    const request = { method: config.method, headers: { ...config.headers }, body: config.data }
    requests.push(request)
    const settle = response => {
      const url = new URL(response.request.path, BASE_URL)
      request.target = { path: url.pathname, query: Object.fromEntries(url.searchParams) }
      request.status = response.status
    }
    return send(config).then(
      response => { settle(response); return response },
      error => { if (error.response) settle(error.response); throw error }
    )
  }
  return { take: () => requests.splice(0) }
}

async function rejection (promise) {
  try {
    await promise
  } catch (reason) {
    return reason
  }
  assert.fail('expected a rejection')
}

function codesByField (errors) {
  return Object.fromEntries(Object.entries(errors).map(([field, list]) => [field, list.map(e => e.code)]))
}

function now () {
  return Math.floor(Date.now() / 1000)
}

// The token with some claims changed, signed again with the server's key (RS256).
function resigned (jwt, claims) {
  const [header, payload] = jwt.split('.')
  const changed = { ...JSON.parse(Buffer.from(payload, 'base64url')), ...claims }
  const input = `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}`
  const signature = sign('sha256', Buffer.from(input), readFileSync(JWT_PRIVATE_KEY_FILE))
  return `${input}.${signature.toString('base64url')}`
}
