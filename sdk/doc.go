// Package sdk is the Go client of hookd's HTTP API. Its webhook-consumer operations
// mirror the Webhooks resource of Codat's Platform SDKs, and it adds hookd's extensions:
// publishing events, message logs, resends, recovery and signing secrets.
//
// # Layout
//
// [New] returns a [Client] with three resources, one per path prefix of the API:
//
//   - [Client.Webhooks] calls the operations under /webhooks. [Webhooks.ListConsumers],
//     [Webhooks.CreateConsumer] and [Webhooks.DeleteConsumer] are Codat's operations, with
//     Codat's model names. [Webhooks.GetConsumer], [Webhooks.UpdateConsumer],
//     [Webhooks.ListMessages], [Webhooks.RecoverMessages], [Webhooks.GetSecret] and
//     [Webhooks.RotateSecret] are hookd extensions on the same consumers.
//   - [Client.Events] publishes events: [Events.PublishEvent] and [Events.PublishEvents].
//   - [Client.Messages] inspects and repeats deliveries: [Messages.GetMessage],
//     [Messages.ListAttempts] and [Messages.ResendMessage].
//
// A Client is safe for concurrent use by several goroutines.
//
// # Errors
//
// An operation returns one of these errors, which [errors.As] finds:
//
//   - [*ErrorMessage] for an error status that the operation declares in hookd's OpenAPI
//     document, with a JSON body. For Codat's three operations these are the statuses that
//     Codat's SDKs declare.
//   - [*SDKError] for any other 4XX or 5XX status, an unexpected success status, or a body
//     with an unexpected content type.
//   - [*ResponseValidationError] when the body of the expected success status does not
//     decode.
//   - An error wrapping the transport's error (such as a [*url.Error]) when no response
//     arrived, and one wrapping the context's error when ctx ended.
//
// # Retries
//
// Every operation but [Webhooks.RotateSecret] is retried by default, as in Codat's SDKs:
// after a 408, 429 or 5XX response and after a connection error, with exponential
// backoff. [RetryConfig] describes the rules, [WithRetryConfig] sets them for a client
// and [WithRetries] for one call.
//
// A retry may repeat a write whose response was lost. [Webhooks.CreateConsumer],
// [Events.PublishEvent] and [Events.PublishEvents] send one Idempotency-Key header for all
// attempts of a call, so that the server can recognise the repeated request.
// [Webhooks.UpdateConsumer] is idempotent. A repeated [Webhooks.DeleteConsumer] returns
// 404, a repeated [Webhooks.RecoverMessages] returns 0, and a repeated
// [Messages.ResendMessage] queues the message twice. [Webhooks.RotateSecret] is sent once
// unless the call passes [WithRetries], because a repeated rotation ends the overlap of
// the older secret at once.
package sdk
