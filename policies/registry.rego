package dgw

# The recipients registry (policies/data/recipients.json, loaded as
# data.data.recipients). Each entry's scope is its data-sharing agreement:
# event type -> leaf path -> allowed operators (DESIGN.md principle 2).
registry_entry := entry if {
	some entry in data.data.recipients
	entry.id == input.recipient.id
}

# The contract scope for this event type; empty when the agreement does not
# cover it.
default recipient_scope := {}

recipient_scope := registry_entry.scope[input.event.type]

# DESIGN.md principle 1: an unknown recipient receives nothing.
refusal contains msg if {
	not registry_entry
	msg := sprintf("recipient %q is not in the recipients registry", [input.recipient.id])
}

# DESIGN.md principle 1: a malformed input is refused. Every rule below may
# rely on these input members having these types (gateway.DecisionContext
# and gateway.Recipient.PolicyView always provide them).
required_input := {
	"event.type": "string",
	"event.purpose": "string",
	"event.route": "array",
	"subject.minor": "boolean",
	"subject.erased": "boolean",
	"subject.consents": "object",
	"subject.objections": "array",
	"recipient.id": "string",
	"recipient.type": "string",
	"recipient.country": "string",
	"recipient.safeguards": "array",
}

# DESIGN.md principle 1: refuse what the rules cannot judge.
refusal contains msg if {
	some member, want in required_input
	type_name(object.get(input, split(member, "."), null)) != want
	msg := sprintf("input %s is missing or not of type %s", [member, want])
}

# The recipient as given must be the registered one: class and country decide
# every rule below, so a mismatch is refused rather than trusted.
refusal contains msg if {
	some key in ["type", "country"]
	registry_entry[key] != input.recipient[key]
	msg := sprintf("recipient %q: %s differs from the registry", [input.recipient.id, key])
}

# §11 and §9.1: recipients get data only under a contract; an event type the
# agreement does not cover is refused.
refusal contains msg if {
	registry_entry
	not registry_entry.scope[input.event.type]
	msg := sprintf("the contract of recipient %q does not cover %s events", [input.recipient.id, input.event.type])
}
