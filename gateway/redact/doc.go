// Package redact turns a decision into the record a recipient receives.
//
// # Recipient schemas
//
// For every recipient and every event type in its contract scope, New
// derives an Avro record schema from the event schema: only the scoped leaf
// fields, nested as in the source (records, arrays of records), each
// optional (["null", T], default null). The schema is named like the source
// record in namespace "dgw.recipient.<id>" (see Namespace); nested records
// and enums keep their short names. Fields carry the source's "category"
// and doc, a doc line saying how the value may have been transformed, and a
// "dgw.operators" property listing the operators the contract allows;
// "format" is carried only when keep is allowed. The schema is a pure
// function of the event schema and the scope, so its CRC-64-AVRO
// fingerprint is stable while both are.
//
// Types per operator:
//
//	keep        the source type
//	mask        string (strings only)
//	hash        string: 64 lowercase hex digits
//	generalise  date → int (the year); a date with role birth_date →
//	            string age band at the event time (0-17, 18-29, 30-39,
//	            40-49, 50-59, 60-69, 70-79, 80+); timestamp → date (UTC)
//	drop        null
//
// Operators of one path that give different types (keep and generalise on
// a date, say) are refused at New: a field has one type per recipient. An
// array of primitives (companions, ssr_codes, bag_tags) is a leaf: the
// operator applies to each element. A field whose format is
// card_security_code may not appear in any scope (PCI DSS 3.3.1).
//
// # Records
//
// Redact builds the record in one pass over the event with a projection
// compiled at New, writing Avro single-object encoding directly: the
// header C3 01, the derived schema's fingerprint, the Avro binary body. A
// leaf the decision does not release, or releases with drop, is null; a
// nested record or array of records is null when the event has none or
// the decision releases nothing below it.
//
// # Masks
//
// mask shortens a string by the field's format:
//
//	pan       digits only, all but the last four replaced: ************1111
//	          (PCI DSS 3.4.1 allows at most BIN and last four); fewer than
//	          12 digits: all replaced
//	email     first character of the local part, "***@", the domain:
//	          j***@example.com; a one-character local part is not shown
//	phone     a leading '+' and the digits, all but the last two replaced:
//	          +*********67; fewer than 5 digits: all replaced
//	document  all but the last three characters replaced: ******789;
//	          fewer than 6 characters: all replaced
//	ip        the network: IPv4 /24 (203.0.113.0/24), IPv6 /48
//	          (2001:db8:1::/48); text that is no address is masked as below
//	(none)    first character and "***": J***; one character: "*"
//
// A masked value never equals its source (a value that already looks
// masked is replaced by stars); the empty string stays empty.
//
// # Pseudonyms and keys
//
// hash is HMAC-SHA256, keyed with the recipient's own secret, over a
// canonical text of the value (e-mail trimmed and lower-cased, card and
// phone numbers as digits, document numbers upper-cased without blanks,
// dates YYYY-MM-DD, ...), in lowercase hex. A value gets the same pseudonym
// in every event for one recipient, so the recipient can join on it, and
// unrelated pseudonyms for different recipients, so recipients cannot join
// with each other.
//
// Secrets come from a Keyring: LoadKeyring reads a file of lines
//
//	# comment
//	fraudshield = base64:3q2+7w...
//	pulse-research = hex:00112233...
//	legal-partners = a raw text secret of at least 32 bytes
//
// KeyringFromEnv reads DGW_HASH_KEY_<ID> variables with the same secret
// syntax, <ID> being the recipient id upper-cased with '-' and '.' replaced
// by '_'. Secrets must be at least 32 bytes. DevKeyring derives keys from a
// seed, for development and tests only. Keyrings never print their secrets
// and no error quotes one. New fails when a recipient whose scope allows
// hash has no key.
package redact
