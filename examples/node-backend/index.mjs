// A Node backend sending conversions with Segment's own SDK, pointed at the forwarder.
//
//   npm install
//   FORWARDER_URL=http://127.0.0.1:8080 FORWARDER_WRITE_KEY=dev_... node index.mjs
//
// The only change from a Segment setup is `host`: the SDK posts batches to `${host}/v1/batch`.
import { Analytics } from '@segment/analytics-node'

const host = process.env.FORWARDER_URL ?? 'http://127.0.0.1:8080'
const writeKey = process.env.FORWARDER_WRITE_KEY
const userId = process.env.EXAMPLE_USER_ID ?? 'user-3003'
if (!writeKey) throw new Error('set FORWARDER_WRITE_KEY to a server source write key')

const analytics = new Analytics({ writeKey, host, flushInterval: 500, maxRetries: 3 })
const failures = []
analytics.on('error', (err) => failures.push(err))

// identify first: HubSpot attaches a custom event to a contact by email, utk or contact id.
analytics.identify({ userId, traits: { email: `${userId}@example.com`, firstName: 'Ada' } })
analytics.track({ userId, event: 'Signed Up', properties: { plan: 'trial' } })
analytics.track({ userId, event: 'Order Completed', properties: { revenue: 99.5, currency: 'EUR' } })

// Send what is queued and wait for the answers before the process exits.
await analytics.closeAndFlush({ timeout: 10000 })
if (failures.length > 0) {
  console.error('not delivered to the forwarder:', failures)
  process.exit(1)
}
console.log(`sent identify + 2 tracks for ${userId}`)
