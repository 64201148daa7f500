# Test helpers: inputs shaped exactly like the gateway's (gateway.DecisionContext
# plus gateway.Recipient.PolicyView()).
package dgw_test

import data.dgw

view_keys := ["id", "type", "country", "safeguards", "agency_code", "corporate_account"]

# The recipient as the gateway hands it to the policy.
view(id) := {key: entry[key] |
	some entry in data.data.recipients
	entry.id == id
	some key in view_keys
}

# A trip over the given countries, as codec.Context fills it.
trip(countries) := {
	"route": countries,
	"origin_country": end(countries, 0),
	"destination_country": end(countries, count(countries) - 1),
}

end(countries, i) := countries[i] if {
	count(countries) > 0
} else := ""

base_event := {
	"type": "booking",
	"purpose": "contract",
	"point_of_sale": "KZ",
	"origin_country": "KZ",
	"destination_country": "KZ",
	"route": ["KZ"],
	"booking_channel": "website",
	"agency_code": "",
	"corporate_account": "",
	"employer_paid": false,
}

# A Kazakh adult with no recorded consents or objections: only Law 94-V applies.
base_subject := {
	"minor": false,
	"citizenship": "KZ",
	"residence": "KZ",
	"consents": {},
	"objections": [],
	"erased": false,
}

ctx(id, event, subject) := {
	"event": object.union(base_event, event),
	"subject": object.union(base_subject, subject),
	"recipient": view(id),
	"schema": {"name": "dgw.events.Test"},
}

# The decision for recipient id, with event and subject overriding the defaults.
decide(id, event, subject) := d if {
	d := dgw.decision with input as ctx(id, event, subject)
}

# ev is an event of type t for purpose p over the given route.
ev(t, p, countries) := object.union(trip(countries), {"type": t, "purpose": p})

consents(keys) := {"consents": {key: true | some key in keys}}

# Whether some reason mentions the fragment.
reason_mentions(d, fragment) if {
	some r in d.reasons
	contains(r, fragment)
}
