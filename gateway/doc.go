// Package gateway is the core of dgw, the personal-data disclosure gateway.
//
// It owns the domain types (Message, Event, DecisionContext, Decision,
// Recipient, Disclosure) and the small ports the pipeline depends on
// (Source, Sink, Codec, Decider, Redactor). Adapters at the edge implement
// the ports; the core never imports them.
//
// The principles the types encode:
//
//   - Fail closed: a field that no decision names is not sent; any error
//     parks the event (dead-letter or held topic) with a reason.
//   - Two fences: a recipient's contract scope bounds every decision.
//   - No PII in the policy engine: the DecisionContext holds routing,
//     purpose and subject flags only, never names, documents or cards.
//   - One event, one data subject.
//   - No loss: a source offset is committed only when every delivery for it
//     and for all earlier offsets of its partition is acknowledged.
package gateway
