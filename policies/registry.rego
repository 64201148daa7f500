package dgw

# The recipients registry (policies/data/recipients.json, loaded as
# data.data.recipients). Each entry's scope is its data-sharing agreement:
# event type -> leaf path -> allowed operators (DESIGN.md principle 2).
registry_entry := registry_by_id[input.recipient.id]

# The registry entries by id. It depends on the registry alone, so the
# gateway computes it once per policy revision, and each decision looks its
# recipient up directly instead of scanning the registry.
registry_by_id := {entry.id: entry | some entry in data.data.recipients}

# The contract scope for this event type; empty when the agreement does not
# cover it.
default recipient_scope := {}

recipient_scope := registry_entry.scope[input.event.type]

# DESIGN.md principle 1: an unknown recipient receives nothing.
recipient_refusal contains msg if {
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

# The type of each member above, as the gateway gave it; a missing member
# has none. Spelt out member by member rather than looked up by path:
# dgw's decision cache keys a decision by the parts of the input the
# policy names, and a lookup by computed path would name the whole input.
input_type["event.type"] := type_name(input.event.type)

input_type["event.purpose"] := type_name(input.event.purpose)

# The route is read through the event facts (regime.rego).
input_type["event.route"] := facts.route_type

input_type["subject.minor"] := type_name(input.subject.minor)

input_type["subject.erased"] := type_name(input.subject.erased)

input_type["subject.consents"] := type_name(input.subject.consents)

input_type["subject.objections"] := type_name(input.subject.objections)

input_type["recipient.id"] := type_name(input.recipient.id)

input_type["recipient.type"] := type_name(input.recipient.type)

input_type["recipient.country"] := type_name(input.recipient.country)

input_type["recipient.safeguards"] := type_name(input.recipient.safeguards)

# The members above all have their types (the gateway always sends them so).
# One body of type tests answers this for nearly every decision; the
# member-by-member check below runs only when it fails, to name the member.
well_formed_input if {
	well_formed_recipient
	facts.route_type == "array" # the route is read through the event facts
	is_boolean(input.subject.minor)
	is_boolean(input.subject.erased)
	is_object(input.subject.consents)
	is_array(input.subject.objections)
}

# The members among them that come with the recipient and the event's type
# and purpose (the gateway checks these once per recipient, type and purpose).
well_formed_recipient if {
	is_string(input.event.type)
	is_string(input.event.purpose)
	is_string(input.recipient.id)
	is_string(input.recipient.type)
	is_string(input.recipient.country)
	is_array(input.recipient.safeguards)
}

# DESIGN.md principle 1: refuse what the rules cannot judge.
refusal contains msg if {
	not well_formed_input
	some member, want in required_input
	not input_type[member] == want
	msg := sprintf("input %s is missing or not of type %s", [member, want])
}

# The recipient as given must be the registered one: class and country decide
# every rule below, so a mismatch is refused rather than trusted.
recipient_refusal contains msg if {
	some key in ["type", "country"]
	registry_entry[key] != input.recipient[key]
	msg := sprintf("recipient %q: %s differs from the registry", [input.recipient.id, key])
}

# §11 and §9.1: recipients get data only under a contract; an event type the
# agreement does not cover is refused.
recipient_refusal contains msg if {
	registry_entry
	not registry_entry.scope[input.event.type]
	msg := sprintf("the contract of recipient %q does not cover %s events", [input.recipient.id, input.event.type])
}
