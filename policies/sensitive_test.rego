# Special categories (GDPR Art 9, PNR Directive Art 13(4)) and card
# security codes (PCI DSS 3.3.1.2).
package dgw_test

import data.dgw

assistance := ev("assistance", "contract", ["KZ"])

test_sensitive_with_explicit_consent if {
	d := decide("ala-airport", assistance, consents(["health_data"]))
	d.fields.ssr_codes == "keep"
	d.fields["medical.medif_required"] == "keep"
	d.fields["passenger.language"] == "keep"
	d.reasons == []
}

test_sensitive_without_consent_withheld if {
	d := decide("ala-airport", assistance, {})
	d.allow
	not d.fields.ssr_codes
	not d.fields["mobility_aid.kind"]
	d.fields["mobility_aid.battery"] == "keep" # dangerous goods, not health
	d.fields.seat == "keep"
	reason_mentions(d, "withheld without explicit consent \"health_data\"")
	reason_mentions(d, "ssr_codes")
}

test_sensitive_withdrawn_consent_withheld if {
	d := decide("ala-airport", assistance, {"consents": {"health_data": false}})
	not d.fields.ssr_codes
}

test_sensitive_vital_interest if {
	d := decide("ala-airport", assistance, {"vital_interest": true})
	d.fields.ssr_codes == "keep"
	dgw.sensitive_ground == "vital_interests" with input as ctx("ala-airport", assistance, {"vital_interest": true})
	dgw.sensitive_ground == "explicit_consent" with input as ctx("ala-airport", assistance, object.union({"vital_interest": true}, consents(["health_data"])))
}

test_sensitive_it_provider_with_consent if {
	d := decide("cloudnest-it", assistance, consents(["health_data", "cross_border"]))
	d.allow
	d.fields["medical.condition"] == "keep"
	n := decide("cloudnest-it", assistance, consents(["cross_border"]))
	n.allow
	not n.fields["medical.condition"]
	not n.fields.explicit_consent
	n.fields["flight.flight_number"] == "keep"
}

# Never to border authorities, employers, market research or anti-fraud,
# even with explicit consent.
test_sensitive_never_to_excluded_classes if {
	every id in ["de-border-pnr", "steppe-energy", "pulse-research", "fraudshield", "kz-police", "silkroad-travel"] {
		x := ctx(id, ev("booking", "contract", ["KZ"]), consents(["health_data"]))
		w := dgw.withheld with input as x
		"meal_code" in w
		"special_service_requests.free_text" in w
	}
	w := dgw.withheld with input as ctx("steppe-energy", ev("corporate", "contract", ["KZ"]), consents(["health_data"]))
	"incident.medical_details" in w
}

test_sensitive_never_note_for_border if {
	g := {"purposes": {"contract"}, "fields": {"meal_code": "keep", "record_locator": "keep"}}
	d := decide("de-border-pnr", ev("booking", "contract", ["KZ", "DE"]), consents(["health_data"])) with dgw.grants.border_authority.booking as g
	d.allow
	not d.fields.meal_code
	d.fields.record_locator == "keep"
	reason_mentions(d, "never disclosed to recipient class border_authority")
}

test_card_security_code_never_released if {
	scope := object.union(view("kzpay-processor"), {"scope": {"payment": {"card.security_code": ["keep"], "card.number": ["keep"]}}})
	g := {"purposes": {"contract"}, "fields": {"card.security_code": "keep", "card.number": "keep"}}
	d := decide("kzpay-processor", ev("payment", "contract", []), {}) with data.data.recipients as [scope]
		with dgw.grants.payment_processor.payment as g
	d.allow
	d.fields == {"card.number": "keep"}
}

test_every_sensitive_event_type_known if {
	every event_type, _ in dgw.sensitive_fields {
		event_type in {"assistance", "booking", "checkin", "corporate"}
	}
}
