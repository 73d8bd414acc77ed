// Package watermill is Switchyard as a Watermill Pub/Sub
// (github.com/ThreeDotsLabs/watermill): a message.Publisher that publishes
// messages as CloudEvents, and a message.Subscriber on Switchyard's pull
// triggers, so a Watermill application (a message.Router with its
// middleware included) moves onto Switchyard by swapping constructors. Its
// name clashes with Watermill's own package: import it under another, e.g.
//
//	import sywm "github.com/switchyard-io/switchyard/sdk/watermill"
//
// # Messages and events
//
// A message published on a topic becomes one CloudEvent: the message's
// UUID is the event's id, its payload the event's data (byte-exact), the
// topic gives its type (PublisherConfig.EventType; the topic itself by
// default), its source is PublisherConfig.Source ("/watermill"), and each
// metadata entry is an extension attribute. CloudEvents attribute names
// are lower-case letters and digits, and values strings without control
// characters, so entries that do not fit travel encoded, reversibly (see
// EncodeMetadata): a key like "correlation_id" becomes the extension
// "wmk" + base32hex(key), a value with control characters is base64 under
// "wmv" + base32hex(key). A Subscriber turns every extension of a received
// event back into metadata (decoded); core attributes (source, subject,
// time...) are not metadata.
//
// Publish sends the messages in atomic batches (PublisherConfig.BatchSize)
// through the SDK and returns once they are durable. When Switchyard pushes
// back (a trigger's queue is at max_queue), Publish waits the delay it
// suggests and tries again: backpressure, not an error.
//
// # Subscriptions and consumer groups
//
// Subscribe(ctx, topic) consumes the pull trigger of the topic and the
// Subscriber's consumer group (SubscriberConfig.ConsumerGroup, "default"
// when empty), creating it when missing (filter: the topic's event type;
// target: pull). The trigger is named by TriggerName: "wm-", the group and
// the topic made lower-case with other characters as '-', cut to fit, and
// 8 hex digits of a hash of both, e.g. "wm-billing-orders-created-1f0c3a9e".
// Subscribers of one group compete for the topic's messages; each group
// gets every message. A topic with no group subscribed (no trigger yet)
// drops what is published, as Switchyard drops every event that matches no
// trigger: call SubscribeInitialize, or create the trigger beforehand, for
// messages published before the first Subscribe. Credentials with the
// consumer role only set SubscriberConfig.DoNotCreateTriggers and consume
// triggers an operator made.
//
// One message per Subscribe is given out at a time. Ack acknowledges the
// event; Nack retries it (after NackDelay or the trigger's backoff; the
// attempt counts toward max_attempts, beyond which it is dead-lettered with
// its history, as every Switchyard attempt). While a message waits for its
// answer its lease is extended (for up to an hour); a lease lost cancels
// the message's context.
// Close hands back what is unacknowledged: a message given out is retried
// (the attempt counts), one not yet taken is released (it does not).
//
// # Guarantees, as the universal test suite's Features declare them
//
//   - Persistent: true. Events wait in Redis until acknowledged, across
//     restarts of the subscribers and of Switchyard.
//   - ConsumerGroups: true (one pull trigger per group and topic).
//   - ExactlyOnceDelivery: false. Delivery is at least once: an Ack lost
//     with its connection, a lease that runs out, or a Subscriber closed
//     with a message in hand redelivers it. The attempt number and the
//     idempotency key (function.FromContext(msg.Context())) tell.
//   - GuaranteedOrder, GuaranteedOrderWithSingleSubscriber: false. A queue
//     hands events out oldest first, but a Nacked or lost one comes back
//     after a backoff, behind the ones that followed it, and competing
//     subscribers finish in any order.
//   - NewSubscriberReceivesOldMessages: false. A group receives what was
//     published once its trigger existed, not a log from its beginning.
//   - ContextPreserved: false. A received message's context is the
//     subscription's, not the publisher's.
//
// TestUniversalPubSub runs Watermill's suite (pubsub/tests.TestPubSub, in
// its short configuration: ForceShort) against a real Switchyard server on
// real Redis. It skips, by these Features:
//
//   - TestPublishSubscribeInOrder and TestNoAck: they need GuaranteedOrder.
//   - TestNewSubscriberReceivesOldMessages: it needs a log that every new
//     subscriber reads from its start.
//   - TestReconnect: it restarts the broker with
//     Features.RestartServiceCommand, a shell command; the server runs in
//     the test's process. Switchyard's own tests kill the server and Redis
//     mid-run instead (e2e/pull_test.go, e2e/redis_restart_test.go).
//
// Every other test of the suite passes.
package watermill
