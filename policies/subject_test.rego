# Subject state: consent, withdrawal, objection, minors, erasure.
package dgw_test

research := ev("booking", "research", ["KZ"])

test_consent_required_for_research if {
	d := decide("pulse-research", research, consents(["cross_border"]))
	not d.allow
	reason_mentions(d, "no consent \"research\" is recorded, which recipient class market_research needs for purpose \"research\"")
}

test_consent_withdrawn if {
	d := decide("pulse-research", research, {"consents": {"research": false, "cross_border": true}})
	not d.allow
	reason_mentions(d, "the consent \"research\" was withdrawn")
}

test_consent_for_campaigns if {
	d := decide("cloudnest-it", ev("loyalty", "campaign", ["KZ"]), consents(["cross_border"]))
	not d.allow
	reason_mentions(d, "no consent \"campaign\" is recorded")
}

test_objection_stops_purpose if {
	d := decide("pulse-research", research, object.union(consents(["research", "cross_border"]), {"objections": ["research"]}))
	not d.allow
	reason_mentions(d, "objected to the purpose \"research\"")
	c := decide("kzpay-processor", ev("payment", "contract", []), {"objections": ["contract"]})
	not c.allow
}

test_objection_to_other_purpose_irrelevant if {
	d := decide("kzpay-processor", ev("payment", "contract", []), {"objections": ["research", "campaign"]})
	d.allow
}

test_objection_does_not_override_legal_duty if {
	d := decide("kz-border-api", ev("checkin", "border_control", ["KZ"]), {"objections": ["border_control"]})
	d.allow
	p := decide("kz-police", ev("booking", "crime_prevention", ["KZ"]), {"objections": ["crime_prevention"]})
	p.allow
	l := decide("claimfix-investigations", ev("booking", "legal_claim", ["KZ"]), {"objections": ["legal_claim"]})
	l.allow
}

test_withdrawn_consent_stops_matching_purpose if {
	d := decide("kzpay-processor", ev("payment", "contract", []), {"consents": {"contract": false}})
	not d.allow
	reason_mentions(d, "withdrew consent for the purpose \"contract\"")
	b := decide("kz-border-api", ev("checkin", "legal_obligation", ["KZ"]), {"consents": {"legal_obligation": false}})
	b.allow
}

test_minor_never_for_research if {
	d := decide("pulse-research", research, object.union(consents(["research", "cross_border"]), {"minor": true}))
	not d.allow
	reason_mentions(d, "minor: no marketing, survey or research use")
	reason_mentions(d, "minor: no market research")
}

test_minor_never_for_marketing if {
	d := decide("cloudnest-it", ev("loyalty", "advertising", ["KZ"]), object.union(consents(["advertising", "cross_border"]), {"minor": true}))
	not d.allow
	reason_mentions(d, "minor: no marketing")
	w := decide("webstats-analytics", web, object.union(consents(["analytics_cookies", "cross_border"]), {"minor": true}))
	not w.allow
}

test_minor_served_for_own_trip if {
	d := decide("ala-airport", ev("checkin", "contract", ["KZ"]), {"minor": true})
	d.allow
}

test_erased_only_to_authorities if {
	d := decide("ala-airport", ev("checkin", "contract", ["KZ"]), {"erased": true})
	not d.allow
	reason_mentions(d, "data was erased")
	b := decide("kz-border-api", ev("checkin", "border_control", ["KZ"]), {"erased": true})
	b.allow
	p := decide("kz-police", ev("booking", "legal_obligation", ["KZ"]), {"erased": true})
	p.allow
}

test_erased_border_contract_purpose_refused if {
	d := decide("kz-border-api", ev("checkin", "contract", ["KZ"]), {"erased": true})
	not d.allow
}

# "marketing" as another tool publishes it: one consent for the four
# marketing purposes.
test_marketing_consent_covers_research if {
	d := decide("pulse-research", research, consents(["marketing", "cross_border"]))
	d.allow
	c := decide("cloudnest-it", ev("loyalty", "campaign", ["KZ"]), consents(["marketing", "cross_border"]))
	c.allow
}

test_marketing_withdrawn_stops_research if {
	d := decide("pulse-research", research, {"consents": {"marketing": false, "cross_border": true}})
	not d.allow
	reason_mentions(d, "the consent \"research\" was withdrawn")
}

# A withdrawal wins over a consent at the other level, whichever came last.
test_withdrawal_wins_over_marketing_consent if {
	d := decide("pulse-research", research, {"consents": {"marketing": true, "research": false, "cross_border": true}})
	not d.allow
	reason_mentions(d, "the consent \"research\" was withdrawn")
	u := decide("pulse-research", research, {"consents": {"marketing": false, "research": true, "cross_border": true}})
	not u.allow
	reason_mentions(u, "the consent \"research\" was withdrawn")
}

# Marketing consent is neither cookie consent nor consent to a transfer abroad.
test_marketing_consent_is_no_other_consent if {
	w := decide("webstats-analytics", web, consents(["marketing", "cross_border"]))
	not w.allow
	x := decide("cloudnest-it", ev("booking", "contract", ["KZ"]), consents(["marketing"]))
	not x.allow
}

test_objection_to_marketing if {
	d := decide("pulse-research", research, object.union(consents(["research", "cross_border"]), {"objections": ["marketing"]}))
	not d.allow
	reason_mentions(d, "objected to the purpose \"research\"")
	c := decide("kzpay-processor", ev("payment", "contract", []), {"objections": ["marketing"]})
	c.allow
}
