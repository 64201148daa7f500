# The decision document: shape, fail-closed defaults, the two fences.
package dgw_test

import data.dgw

test_decision_shape if {
	d := decide("kzpay-processor", ev("payment", "contract", []), {})
	object.keys(d) == {"allow", "fields", "basis", "transfer", "reasons"}
	is_boolean(d.allow)
	every _, op in d.fields {
		op in {"keep", "generalise", "mask", "hash"}
	}
}

test_refusal_releases_nothing if {
	d := decide("kzpay-processor", ev("booking", "contract", ["KZ"]), {})
	not d.allow
	d.fields == {}
	count(d.reasons) > 0
	d.reasons == sort(d.reasons)
}

# The contract scope narrows a class grant: the transfer company's booking
# contract has no meal code although service providers may get one.
test_scope_narrows_grant if {
	d := decide("astana-transfers", ev("booking", "service", ["KZ"]), consents(["health_data"]))
	d.allow
	not d.fields.meal_code
	every path, _ in d.fields {
		view_scope := [e.scope.booking | some e in data.data.recipients; e.id == "astana-transfers"][0]
		view_scope[path]
	}
}

# A contract that allows only a more protective operator gets that operator.
test_scope_escalates_operator if {
	entry := object.union(view("kzpay-processor"), {"scope": {"payment": {"card.number": ["mask", "hash"], "amount": ["keep"]}}})
	d := decide("kzpay-processor", ev("payment", "contract", []), {}) with data.data.recipients as [entry]
	d.allow
	d.fields == {"card.number": "mask", "amount": "keep"}
}

# A contract that allows only a less protective operator than the grant's
# gets nothing for that field.
test_scope_never_weakens_operator if {
	entry := object.union(view("fraudshield"), {"scope": {"payment": {"card.number": ["keep"], "amount": ["keep"]}}})
	d := decide("fraudshield", ev("payment", "contract", []), consents(["cross_border"])) with data.data.recipients as [entry]
	d.allow
	d.fields == {"amount": "keep"}
}

test_nothing_left_is_refused if {
	entry := object.union(view("skychef-catering"), {"scope": {"booking": {"meal_code": ["keep"]}}})
	d := decide("skychef-catering", ev("booking", "service", ["KZ"]), {}) with data.data.recipients as [entry]
	not d.allow
	reason_mentions(d, "nothing left to release")
}

test_basis_none_for_unmapped_purpose if {
	dgw.basis == "none" with input as ctx("kzpay-processor", ev("payment", "unknown_purpose", []), {})
}

test_processor_op_most_revealing if {
	dgw.processor_op(["hash", "mask"]) == "mask"
	dgw.processor_op(["hash", "keep"]) == "keep"
}

test_no_scope_for_uncovered_event_type if {
	dgw.recipient_scope == {} with input as ctx("ala-airport", ev("booking", "contract", ["KZ"]), {})
	dgw.recipient_scope.seat == ["keep"] with input as ctx("ala-airport", ev("checkin", "contract", ["KZ"]), {})
}
