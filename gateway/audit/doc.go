// Package audit writes and checks dgw's tamper-evident audit trail.
//
// # What is recorded
//
// For every event the pipeline decodes, the Auditor writes one audit entry
// (schemas/audit.avsc) holding one decision per registered recipient,
// refusals and held copies included: event id, type, time and purpose,
// where the source record was, and per recipient its id, name, class and
// country, the outcome, the leaf paths delivered with the operator applied
// to each, the paths of its contract scope it did not get, the legal
// basis, the cross-border mechanism, the policy revision and the policy's
// reasons, plus the trace id. The passenger appears only as a pseudonym,
// HMAC-SHA256(audit key, passenger id): the trail answers a subject's
// access request (SubjectCollector) without holding the identifier. No
// field value is ever recorded.
//
// An event's decisions travel in one Kafka record rather than one record
// per recipient, so that the broker appends them atomically: a producer
// retry can never split an event's decisions, drop one of them or put
// them out of order.
//
// The pipeline writes the entry before any delivery of the event and
// commits the source offset only after both are acknowledged (see
// gateway.Auditor). If a delivery then fails and is held, a correction
// entry (kind "correction", naming the seq it corrects) records that.
// A crash between the entry and the deliveries can leave an entry whose
// deliveries never happened; the event is then handled again and
// audited again. The trail may thus over-report an attempted disclosure
// in that window, and never under-reports one.
//
// # Hash chains
//
// Each pipeline worker of each dgw process writes its own chain, keyed by
// the chain id so it stays on one partition. Every entry carries its
// chain id, its sequence number (from 1), the previous entry's hash
// (zero for seq 1), its own hash — SHA-256 over "dgw.audit.v1\n", the
// single-object header and the Avro encoding of every field before the
// hash, which is exactly the encoded record minus its last 64 bytes — and
// a MAC, HMAC-SHA256 of the hash under a key derived from the audit key.
// The hash makes any change to a record visible; the MAC makes a rewrite
// that recomputes the hashes visible to anyone verifying with the key.
//
// # Verification and duplicates
//
// The Verifier reads a topic partition by partition in offset order and
// names, per chain, the first broken record and whether it was modified,
// removed, inserted or reordered (see the constants). Kafka producers
// without idempotence may write a record twice when a produce request is
// retried after an unclear failure, and the pipeline retries writes that
// failed; such a copy is byte-for-byte identical to a record already in
// the chain and is counted as a duplicate, not as tampering: it adds no
// evidence and changes none. A copy that differs in any byte is not a
// duplicate. Records removed from the end of a chain leave no trace in the
// chain itself; Heads from one verification, kept elsewhere and passed to
// the next as anchors, detect that. Records deleted by the topic's
// retention are not tampering: a chain may then start after seq 1. Once
// retention has deleted records from a partition, the verifier can no
// longer tell a removed first record of a chain from an expired one;
// anchors cover that too.
package audit
