# METADATA
# title: dgw disclosure policy
# description: |
#   What each registered recipient may receive about one passenger event.
#   The gateway evaluates data.dgw.decision once per (event, recipient).
#   The input carries no personal data (DESIGN.md principle 3):
#   {event, subject, recipient, schema} as documented in README.md.
#
#   Data files are loaded under their directory path, exactly as
#   `opa test policies/` loads them: policies/data/recipients.json is
#   data.data.recipients and policies/data/countries.json is
#   data.data.countries.
#
#   Modules, one per concern:
#     decision.rego   this entry point: combines everything below
#     registry.rego   the recipients registry and its contract scopes
#     classes.rego    recipient classes (privacy policy §9.1.x): purposes,
#                     conditions, legal basis
#     fields.rego     the fields each class may receive per event type
#     regime.rego     which data-protection laws apply
#     transfer.rego   cross-border transfer mechanisms (Law 94-V Art 16,
#                     GDPR and UK GDPR Chapter V)
#     sensitive.rego  special categories, card security codes
#     subject.rego    consent, objection, minors, erasure
package dgw

# The decision is always defined: a refusal names its reasons. Fields are
# leaf paths of schemas/<event type>.avsc with the operator to apply.
decision := {
	"allow": allow,
	"fields": released_fields,
	"basis": basis,
	"transfer": transfer,
	"reasons": reasons,
}

# DESIGN.md principle 1 (fail closed): nothing is disclosed unless every
# rule agrees and at least one field is left to release.
default allow := false

allow if {
	count(refusal) == 0
	count(release) > 0
}

# A refused decision releases nothing. (A default rather than an `else`:
# dgw partially evaluates the policy per recipient to find which input
# members each recipient's decision reads, and partial evaluation does not
# look through `else`; see policies/README.md, "Event facts".)
default released_fields := {}

released_fields := release if allow

# Reasons explain a refusal, and note what an allowed decision withheld.
# They name purposes, classes, countries and field paths, never values.
reasons := sort(((refusal | nothing_released) | notes))

# Refusals that follow from the recipient and the event's type and purpose
# alone (registry.rego, classes.rego: unknown recipient or class, registry
# mismatch, no contract or grant for the event type, purpose limitation).
# They are refusals like any other; they are kept apart only so that the
# gateway computes them once per registered recipient, event type and
# purpose instead of for every decision (gateway/policy/constants.go). A
# rule here that reads more of the input is still correct, only computed
# for every decision again.
refusal contains msg if some msg in recipient_refusal

# DESIGN.md principle 1: an allowed disclosure with no field would only tell
# the recipient that the passenger exists.
nothing_released contains msg if {
	count(refusal) == 0
	count(release) == 0
	msg := sprintf("nothing left to release to recipient class %s for %s events after the contract scope and the special-category rules", [input.recipient.type, input.event.type])
}

# Operators from most to least revealing (gateway/decision.go).
op_rank := {"keep": 0, "generalise": 1, "mask": 2, "hash": 3}

rank_op := {rank: op | some op, rank in op_rank}

# DESIGN.md principle 2 (two fences): a field is released only when its class
# grant names it (fields.rego) and the recipient's contract scope allows an
# operator at least as protective as the grant's; the most revealing such
# operator is used. Withheld fields (sensitive.rego) are never released.
# One rule per field (not one object), so that another module may add to it;
# `dgw policy check` holds any addition to the contract scopes.
release[path] := op if some path, op in object.remove(in_scope, withheld)

# The fields of the class grant the contract scope allows, with their operator.
in_scope := {path: op |
	some path, wanted in grant.fields
	op := scope_op(recipient_scope[path], wanted)
}

# The grant's own operator when the contract allows it, else the most
# revealing allowed operator that is more protective than the grant's.
scope_op(allowed, wanted) := wanted if {
	wanted in allowed
} else := rank_op[min(ranks)] if {
	ranks := {op_rank[op] |
		some op in allowed
		op_rank[op] > op_rank[wanted]
	}
	count(ranks) > 0
}
