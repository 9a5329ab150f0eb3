// A storefront's customer session through @chec/commerce.js 2.8.0, unmodified, against a running server.
//
// Env: CHEC_URL (the url option: <base>/chec), PUBLIC_KEY (the account's publishable key),
// EMAIL (the customer's), LOGIN_URL (the base_url for login, with {token}), and EXPECTED (JSON:
// customerId, orderIds newest first, otherCustomerId, otherOrderId, otherEmail, externalId).
// The login link arrives on standard input, one line, once the email has reached the SMTP
// server the test runs. The tests share one session and run in order, as a storefront would.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'

const require = createRequire(import.meta.url)
const { CHEC_URL, PUBLIC_KEY, EMAIL, LOGIN_URL, EXPECTED } = process.env
if (!CHEC_URL || !PUBLIC_KEY || !EMAIL || !LOGIN_URL || !EXPECTED) {
  throw new Error('Set CHEC_URL, PUBLIC_KEY, EMAIL, LOGIN_URL and EXPECTED')
}
const expected = JSON.parse(EXPECTED)
const TIMEOUT = { timeout: 20_000 }

// The two Node shims of commercejs-wire.md §3: the SDK keeps its session in
// window.localStorage, and sets X-Authorization to undefined on JWT calls, which Node refuses
// to send (a browser sends the text "undefined"). Nothing else is changed.
const store = new Map()
global.window = {
  localStorage: {
    getItem: k => store.get(k) ?? null,
    setItem: (k, v) => store.set(k, String(v)),
    removeItem: k => store.delete(k),
  },
}
const axios = require(require.resolve('axios', { paths: [dirname(require.resolve('@chec/commerce.js'))] }))
axios.interceptors.request.use(c => {
  for (const k in c.headers) if (c.headers[k] === undefined) delete c.headers[k]
  return c
})

const Commerce = require('@chec/commerce.js')
const commerce = new Commerce(PUBLIC_KEY, false, { url: CHEC_URL, timeoutMs: 10_000 })
const session = {}

function readLine () {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin })
    lines.once('line', line => { resolve(line.trim()); lines.close() })
    lines.once('close', () => reject(new Error('standard input closed before the login link came')))
  })
}

function claims (jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
}

async function rejection (promise) {
  try {
    await promise
  } catch (error) {
    return error
  }
  assert.fail('expected the call to be rejected')
}

test('login asks for the email and answers success, also for an unknown email', TIMEOUT, async () => {
  assert.equal(commerce.customer.isLoggedIn(), false)

  assert.deepEqual(await commerce.customer.login(EMAIL, LOGIN_URL), { success: true })
  assert.deepEqual(await commerce.customer.login(`nobody-${Date.now()}@e2e.test`, LOGIN_URL), { success: true })
})

test('getToken exchanges the emailed token and keeps the session', TIMEOUT, async () => {
  const link = await readLine()
  const prefix = LOGIN_URL.replace('{token}', '')
  assert.ok(link.startsWith(prefix), `the link ${link} is built on ${LOGIN_URL}`)
  session.token = new URL(link).searchParams.get('token')

  const result = await commerce.customer.getToken(session.token)

  assert.deepEqual(Object.keys(result).sort(), ['customer_id', 'expires', 'jwt'])
  assert.equal(result.customer_id, expected.customerId)
  const now = Date.now() / 1000
  assert.ok(result.expires > now + 24 * 3600 - 60 && result.expires <= now + 24 * 3600 + 60)
  assert.equal(claims(result.jwt).cid, expected.customerId)
  assert.equal(claims(result.jwt).exp, result.expires)
  assert.equal(commerce.customer.id(), expected.customerId)
  assert.equal(commerce.customer.token(), result.jwt)
  assert.equal(store.get('commercejs_customer_token'), result.jwt)
  assert.equal(commerce.customer.isLoggedIn(), true)
  session.jwt = result.jwt
})

test('about reads the customer', TIMEOUT, async () => {
  const customer = await commerce.customer.about()

  const { created, updated, ...fields } = customer
  assert.deepEqual(fields, {
    id: expected.customerId,
    external_id: expected.externalId,
    firstname: 'Roy',
    lastname: 'Bao',
    email: EMAIL,
    phone: null,
    meta: {},
  })
  assert.ok(Number.isInteger(created) && Number.isInteger(updated) && created <= updated)
  assert.ok(Math.abs(created - Date.now() / 1000) < 600)
})

test('update changes the customer and answers it', TIMEOUT, async () => {
  const changes = { firstname: 'Leslie', lastname: 'Knope', phone: '+15555550100', external_id: 'CRM-123', meta: { tier: 'gold' } }

  const updated = await commerce.customer.update(changes)

  assert.equal(updated.id, expected.customerId)
  for (const [field, value] of Object.entries(changes)) assert.deepEqual(updated[field], value, field)
  assert.equal(updated.email, EMAIL)
  assert.deepEqual((await commerce.customer.about()).meta, { tier: 'gold' })
})

test('update rejects a taken email with the field error', TIMEOUT, async () => {
  const error = await rejection(commerce.customer.update({ email: expected.otherEmail }))

  assert.equal(error.statusCode, 422)
  assert.deepEqual(error.data, {
    status_code: 422,
    error: { type: 'validation', message: 'The given data was invalid.', errors: { email: ['Email has already been taken.'] } },
  })
  assert.equal((await commerce.customer.about()).email, EMAIL)
})

test('getOrders without params lists the orders newest first', TIMEOUT, async () => {
  const { data, meta } = await commerce.customer.getOrders()

  assert.deepEqual(data.map(order => order.id), expected.orderIds)
  assert.deepEqual(meta.pagination, { total: 3, count: 3, per_page: 20, current_page: 1, total_pages: 1, links: {} })
  assert.ok(data.every(order => order.customer.id === expected.customerId))
})

test('getOrders with params pages and sorts', TIMEOUT, async () => {
  const oldestFirst = [...expected.orderIds].reverse()

  const second = await commerce.customer.getOrders(null, null, { limit: 2, page: 2, sortDirection: 'asc' })

  assert.deepEqual(second.data.map(order => order.id), oldestFirst.slice(2))
  const { links, ...pagination } = second.meta.pagination
  assert.deepEqual(pagination, { total: 3, count: 1, per_page: 2, current_page: 2, total_pages: 2 })
  assert.match(links.previous, /[?&]page=1(&|$)/)
  assert.equal(links.next, undefined)

  const first = await commerce.customer.getOrders(expected.customerId, session.jwt, { limit: 2, sortBy: 'created' })
  assert.deepEqual(first.data.map(order => order.id), expected.orderIds.slice(0, 2))
  assert.match(first.meta.pagination.links.next, /[?&]page=2(&|$)/)
})

test('getOrder reads one order with its prices and customer', TIMEOUT, async () => {
  const order = await commerce.customer.getOrder(expected.orderIds[0])

  assert.equal(order.id, expected.orderIds[0])
  assert.equal(order.customer_reference, expected.orderCodes[0])
  assert.equal(order.status_payment, 'paid')
  assert.deepEqual(order.currency, { code: 'USD', symbol: '$' })
  assert.deepEqual(order.order_value, { raw: 42.5, formatted: '42.50', formatted_with_symbol: '$42.50', formatted_with_code: '42.50 USD' })
  assert.deepEqual(order.order.line_items.map(item => [item.product_name, item.quantity, item.line_total.raw]), [['Tea', 2, 40]])
  assert.equal(order.customer.firstname, 'Leslie')
  assert.equal('_event' in order, false)
})

test("another customer's orders are forbidden, and their order is not found", TIMEOUT, async () => {
  const forbidden = await rejection(commerce.customer.getOrders(expected.otherCustomerId, session.jwt))
  assert.equal(forbidden.statusCode, 403)
  assert.equal(forbidden.data.error.type, 'forbidden')

  const missing = await rejection(commerce.customer.getOrder(expected.otherOrderId))
  assert.equal(missing.statusCode, 404)
  assert.equal(missing.data.error.type, 'not_found')
})

test('logout ends the session here; about then gets a 401', TIMEOUT, async () => {
  commerce.customer.logout()

  assert.equal(commerce.customer.isLoggedIn(), false)
  assert.equal(commerce.customer.id(), null)
  assert.equal(store.size, 0)
  const error = await rejection(commerce.customer.about())
  assert.equal(error.statusCode, 401)
  assert.equal(error.data.error.type, 'unauthorized')
})

test('the emailed token works once', TIMEOUT, async () => {
  const error = await rejection(commerce.customer.getToken(session.token))

  assert.equal(error.statusCode, 404)
  assert.deepEqual(error.data, { status_code: 404, error: { type: 'not_found', message: 'The login token is invalid, used or expired.' } })
  assert.equal(commerce.customer.isLoggedIn(), false)
})
