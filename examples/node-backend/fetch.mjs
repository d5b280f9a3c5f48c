// A Node backend sending conversions with plain fetch (Node 18+): no SDK needed.
//
//   FORWARDER_URL=http://127.0.0.1:8080 FORWARDER_WRITE_KEY=dev_... node fetch.mjs
//
// One POST /v1/batch with HTTP Basic auth (write key as user name, empty password). A 200 means
// every accepted event is on disk; the body lists rejected events by index with a reason. On 503
// or a network error, send the same body again later: the messageIds make a retry safe.
import { randomUUID } from 'node:crypto'

const url = process.env.FORWARDER_URL ?? 'http://127.0.0.1:8080'
const writeKey = process.env.FORWARDER_WRITE_KEY
const userId = process.env.EXAMPLE_USER_ID ?? 'user-4004'
if (!writeKey) throw new Error('set FORWARDER_WRITE_KEY to a server source write key')

const event = (type, fields) => ({
  type,
  userId,
  messageId: randomUUID(), // fixed for this request, so a retry is deduplicated
  timestamp: new Date().toISOString(),
  ...fields,
})
const body = JSON.stringify({
  batch: [
    event('identify', { traits: { email: `${userId}@example.com`, lastName: 'Lovelace' } }),
    event('track', { event: 'Subscription Renewed', properties: { revenue: 480 } }),
  ],
})
const auth = 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64')

for (let attempt = 0; attempt < 5; attempt++) {
  let response
  try {
    response = await fetch(`${url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body,
    })
  } catch {
    await new Promise((r) => setTimeout(r, 2 ** attempt * 1000))
    continue
  }
  if (response.status === 503) {
    const wait = Number(response.headers.get('retry-after') ?? 2 ** attempt)
    await new Promise((r) => setTimeout(r, wait * 1000))
    continue
  }
  const result = await response.json()
  console.log(JSON.stringify(result))
  process.exit(response.ok && result.accepted === 2 ? 0 : 1)
}
console.error('forwarder unavailable')
process.exit(1)
