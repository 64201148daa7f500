# One or more cases for every recipient class of §9.1 and every class condition.
package dgw_test

import data.dgw

# §9.1.1, Reg 1107/2006: the airport's PRM service gets the assistance
# request; with explicit consent the health SSRs too, never the diagnosis.
test_airport_assistance_with_consent if {
	d := decide("ala-airport", ev("assistance", "service", ["KZ", "TR"]), consents(["health_data", "cross_border"]))
	d.allow
	d.basis == "contract"
	d.fields.ssr_codes == "keep"
	d.fields["mobility_aid.kind"] == "keep"
	d.fields["passenger.family_name"] == "keep"
	not d.fields["medical.condition"]
	not d.fields["medical.physician_contact"]
	d.transfer == {"cross_border": false, "mechanism": "domestic", "regimes": {"kz": "domestic"}}
}

test_airport_checkin_and_baggage if {
	c := decide("ala-airport", ev("checkin", "contract", ["KZ", "DE"]), {})
	c.allow
	c.fields.bag_tags == "keep"
	b := decide("ala-airport", ev("baggage", "baggage", ["KZ"]), {})
	b.allow
	b.fields["claim.reference"] == "keep"
	not b.fields["claimant.email"]
}

test_airport_baggage_only_for_baggage_purpose if {
	d := decide("ala-airport", ev("baggage", "contract", ["KZ"]), {})
	not d.allow
	reason_mentions(d, "only for the purposes baggage")
}

test_airport_trip_elsewhere_refused if {
	d := decide("ala-airport", ev("checkin", "contract", ["TR", "DE"]), {})
	not d.allow
	d.fields == {}
	reason_mentions(d, "its own country (KZ)")
}

test_airport_booking_not_mapped if {
	d := decide("ala-airport", ev("booking", "contract", ["KZ"]), {})
	not d.allow
	reason_mentions(d, "no rule lets recipient class airport_operator receive booking events")
	reason_mentions(d, "does not cover booking events")
}

# §9.1.1: the lounge in Istanbul; Law 94-V Art 16 needs a ground for Türkiye.
test_lounge_with_transfer_consent if {
	d := decide("ist-lounge", ev("checkin", "contract", ["KZ", "TR"]), consents(["cross_border"]))
	d.allow
	d.fields["passenger.family_name"] == "keep"
	d.transfer.cross_border
	d.transfer.mechanism == "kz_consent"
}

test_lounge_without_transfer_ground_refused if {
	d := decide("ist-lounge", ev("checkin", "contract", ["KZ", "TR"]), {})
	not d.allow
	reason_mentions(d, "Law 94-V Art 16")
}

test_lounge_loyalty_no_member_number if {
	d := decide("ist-lounge", ev("loyalty", "service", ["KZ", "TR"]), consents(["cross_border"]))
	d.allow
	d.fields["member.tier"] == "keep"
	not d.fields["member.number"]
}

# A trip touching the EEA brings in the GDPR: Türkiye has no adequacy, the
# lounge serves the passenger's own trip (Art 49(1)(b)).
test_lounge_gdpr_trip_uses_contract_derogation if {
	d := decide("ist-lounge", ev("checkin", "contract", ["KZ", "TR", "DE"]), consents(["cross_border"]))
	d.allow
	d.transfer.mechanism == "kz_consent+art49_contract"
	d.transfer.regimes == {"kz": "kz_consent", "eu_gdpr": "art49_contract"}
}

# §9.1.2: API data to the Kazakh border service for flights to or from Kazakhstan.
test_kz_border_api_checkin if {
	d := decide("kz-border-api", ev("checkin", "border_control", ["DE", "KZ"]), consents(["health_data"]))
	d.allow
	d.basis == "legal_obligation"
	d.fields["document.number"] == "keep"
	d.fields["passenger.nationality"] == "keep"
	not d.fields.meal_code
	not d.fields.ssr_codes
	not d.fields.contact_phone # not in the Kazakh API contract
}

# Data collected to perform the contract still goes to the border under the
# carrier's legal obligation.
test_border_checkin_contract_purpose_is_legal_obligation if {
	d := decide("kz-border-api", ev("checkin", "contract", ["KZ", "TR"]), {})
	d.allow
	d.basis == "legal_obligation"
}

test_kz_border_api_other_flights_refused if {
	d := decide("kz-border-api", ev("checkin", "border_control", ["TR", "DE"]), {})
	not d.allow
	reason_mentions(d, "its own country (KZ)")
}

test_kz_border_api_no_pnr if {
	d := decide("kz-border-api", ev("booking", "border_control", ["KZ", "DE"]), {})
	not d.allow
	reason_mentions(d, "does not cover booking events")
}

test_border_not_for_research if {
	d := decide("kz-border-api", ev("checkin", "research", ["KZ"]), consents(["research"]))
	not d.allow
	reason_mentions(d, "only for the purposes border_control, contract, legal_obligation")
}

# §9.1.2, PNR Directive Annex I: the German PIU for flights to or from Germany.
test_de_border_pnr_booking if {
	d := decide("de-border-pnr", ev("booking", "contract", ["KZ", "DE"]), consents(["health_data"]))
	d.allow
	d.basis == "legal_obligation"
	d.fields.companions == "keep"
	d.fields["contact.email"] == "keep"
	d.fields.frequent_flyer_number == "keep"
	not d.fields.meal_code
	not d.fields["special_service_requests.free_text"]
	d.transfer.mechanism == "kz_treaty"
	d.transfer.regimes == {"kz": "kz_treaty", "eu_gdpr": "domestic"}
}

test_de_border_pnr_checkin_has_destination_address if {
	d := decide("de-border-pnr", ev("checkin", "border_control", ["KZ", "DE"]), {})
	d.allow
	d.fields["destination_address.city"] == "keep"
	d.fields.contact_phone == "keep"
}

# §9.1.2, §9.1.7: the Kazakh police, for legal obligations and crime prevention only.
test_police_legal_obligation if {
	d := decide("kz-police", ev("booking", "legal_obligation", ["KZ"]), {})
	d.allow
	d.basis == "legal_obligation"
	d.fields["passenger.birth_date"] == "keep"
	p := decide("kz-police", ev("payment", "crime_prevention", []), {})
	p.allow
	p.fields["card.number"] == "mask"
	not p.fields["card.security_code"]
}

test_police_not_for_contract if {
	d := decide("kz-police", ev("booking", "contract", ["KZ"]), {})
	not d.allow
	reason_mentions(d, "only for the purposes crime_prevention, legal_obligation")
}

# §9.1.3: the travel agency gets back only the bookings it made.
test_agency_own_booking if {
	d := decide("silkroad-travel", object.union(ev("booking", "contract", ["KZ", "TR"]), {"agency_code": "96123456", "booking_channel": "travel_agency"}), {})
	d.allow
	d.fields.ticket_number == "keep"
	not d.fields["passenger.birth_date"]
	not d.fields.meal_code
}

test_agency_other_booking_refused if {
	d := decide("silkroad-travel", object.union(ev("booking", "contract", ["KZ"]), {"agency_code": "11111111"}), {})
	not d.allow
	reason_mentions(d, "only bookings made through it")
}

test_agency_direct_booking_refused if {
	d := decide("silkroad-travel", ev("booking", "contract", ["KZ"]), {})
	not d.allow
}

test_agency_payment_no_card if {
	d := decide("silkroad-travel", object.union(ev("payment", "contract", []), {"agency_code": "96123456"}), {})
	d.allow
	d.fields.amount == "keep"
	not d.fields["card.number"]
}

# §9.1.4: transfers and catering, each within its own contract.
test_transfer_provider_booking if {
	d := decide("astana-transfers", ev("booking", "service", ["DE", "KZ"]), {})
	d.allow
	d.fields["contact.phone"] == "keep"
	d.fields["itinerary.segments.arrival_airport"] == "keep"
	not d.fields.meal_code
	d.transfer.regimes.eu_gdpr == "art49_contract"
}

test_caterer_meal_code_with_consent if {
	d := decide("skychef-catering", ev("booking", "service", ["KZ", "TR"]), consents(["health_data"]))
	d.allow
	d.fields.meal_code == "keep"
	d.fields["itinerary.segments.seat"] == "keep"
	not d.fields["passenger.family_name"]
	c := decide("skychef-catering", ev("checkin", "contract", ["KZ"]), consents(["health_data"]))
	c.fields.meal_code == "keep"
	c.fields.seat == "keep"
}

test_caterer_without_consent_gets_no_meal_code if {
	d := decide("skychef-catering", ev("booking", "service", ["KZ"]), {})
	d.allow
	not d.fields.meal_code
	d.fields["itinerary.segments.seat"] == "keep"
	reason_mentions(d, "withheld without explicit consent")
}

# §9.1.5: market research on pseudonymised data, with the research consent.
test_market_research_pseudonymised if {
	d := decide("pulse-research", ev("booking", "research", ["KZ"]), consents(["research", "cross_border"]))
	d.allow
	d.basis == "consent"
	d.fields.passenger_id == "hash"
	d.fields["passenger.birth_date"] == "generalise"
	d.fields.booked_at == "generalise"
	not d.fields["passenger.family_name"]
	not d.fields["contact.email"]
	not d.fields.record_locator
	d.transfer.mechanism == "kz_consent"
}

test_market_research_survey_needs_research_consent_too if {
	d := decide("pulse-research", ev("loyalty", "survey", ["KZ"]), consents(["survey", "cross_border"]))
	not d.allow
	reason_mentions(d, "no consent \"research\" is recorded")
	ok := decide("pulse-research", ev("loyalty", "survey", ["KZ"]), consents(["survey", "research", "cross_border"]))
	ok.allow
	ok.fields["member.number"] == "hash"
	ok.fields["survey_answers.answer"] == "keep"
}

test_market_research_not_for_contract if {
	d := decide("pulse-research", ev("booking", "contract", ["KZ"]), consents(["research", "cross_border"]))
	not d.allow
}

# §9.1.6: the IT provider (processor) gets its agreement's scope, card number hashed.
test_it_provider_payment if {
	d := decide("cloudnest-it", ev("payment", "contract", []), consents(["cross_border"]))
	d.allow
	d.fields["card.number"] == "hash"
	d.fields["card.holder_name"] == "keep"
	not d.fields["card.security_code"]
	d.transfer.mechanism == "kz_consent"
}

test_it_provider_without_transfer_ground_refused if {
	d := decide("cloudnest-it", ev("booking", "contract", ["KZ"]), {})
	not d.allow
	reason_mentions(d, "transfer to DE under Law 94-V Art 16")
}

test_it_provider_no_subject_requests if {
	d := decide("cloudnest-it", ev("subject_request", "contract", []), consents(["cross_border"]))
	not d.allow
	reason_mentions(d, "does not cover subject_request events")
}

test_it_provider_any_purpose if {
	d := decide("cloudnest-it", ev("loyalty", "campaign", ["KZ"]), consents(["campaign", "cross_border"]))
	d.allow
	d.basis == "consent"
	d.fields["member.email"] == "keep"
}

# §9.1.7: complaint and baggage-dispute investigators.
test_investigator_baggage_dispute if {
	d := decide("claimfix-investigations", ev("baggage", "baggage", ["KZ", "TR"]), {})
	d.allow
	d.fields["claim.statement"] == "keep"
	d.fields["claimant.email"] == "keep"
	l := decide("claimfix-investigations", ev("booking", "legal_claim", ["KZ"]), {})
	l.allow
	l.basis == "legitimate_interest"
}

test_investigator_not_for_campaigns if {
	d := decide("claimfix-investigations", ev("baggage", "campaign", ["KZ"]), consents(["campaign"]))
	not d.allow
}

# §9.1.8: the employer, for trips it paid for under its own account.
corporate_trip := object.union(ev("corporate", "contract", ["KZ", "DE"]), {
	"employer_paid": true,
	"corporate_account": "CORP-STEPPE-ENERGY",
	"booking_channel": "corporate_tool",
})

test_employer_paid_trip if {
	d := decide("steppe-energy", corporate_trip, consents(["health_data"]))
	d.allow
	d.basis == "contract"
	d.fields["incident.summary"] == "keep"
	d.fields["segments.flight_number"] == "keep"
	not d.fields["incident.medical_details"]
	not d.fields.meal_code
	not d.fields["employee.birth_date"]
	not d.fields["fare.amount"]
	d.transfer.regimes.eu_gdpr == "art49_contract"
}

test_employer_other_account_refused if {
	d := decide("steppe-energy", object.union(corporate_trip, {"corporate_account": "CORP-OTHER"}), {})
	not d.allow
	reason_mentions(d, "only trips it paid for")
}

test_employer_not_paid_refused if {
	d := decide("steppe-energy", object.union(corporate_trip, {"employer_paid": false}), {})
	not d.allow
}

test_employer_no_passport_no_payment if {
	c := decide("steppe-energy", object.union(corporate_trip, {"type": "checkin"}), {})
	not c.allow
	p := decide("steppe-energy", object.union(corporate_trip, {"type": "payment"}), {})
	not p.allow
}

# §9.1.9: the acquirer gets the card number, never the security code.
test_payment_processor if {
	d := decide("kzpay-processor", ev("payment", "contract", []), {})
	d.allow
	d.fields["card.number"] == "keep"
	d.fields["card.expiry"] == "keep"
	not d.fields["card.security_code"]
	d.transfer.mechanism == "domestic"
}

# §9.1.9: anti-fraud screening with pseudonymised card data, in the US.
test_anti_fraud if {
	d := decide("fraudshield", ev("payment", "crime_prevention", []), consents(["cross_border"]))
	d.allow
	d.basis == "legitimate_interest"
	d.fields["card.number"] == "hash"
	d.fields["risk.ip_address"] == "keep"
	not d.fields["card.holder_name"]
	not d.fields["card.security_code"]
}

test_anti_fraud_contract_purpose_basis if {
	d := decide("fraudshield", ev("payment", "contract", []), consents(["cross_border"]))
	d.allow
	d.basis == "contract"
}

# §9.1.10: law firms for legal claims only.
test_law_firm_legal_claim if {
	d := decide("legal-partners", ev("payment", "legal_claim", []), consents(["cross_border"]))
	d.allow
	d.basis == "legitimate_interest"
	d.fields["card.number"] == "mask"
	d.transfer.mechanism == "kz_consent"
}

test_law_firm_not_for_contract if {
	d := decide("legal-partners", ev("booking", "contract", ["KZ"]), consents(["cross_border"]))
	not d.allow
}

# §9.1.11: web statistics without personal information.
web := {"type": "websession", "purpose": "research", "route": [], "origin_country": "", "destination_country": ""}

test_web_analytics_statistics_only if {
	d := decide("webstats-analytics", web, consents(["analytics_cookies", "cross_border"]))
	d.allow
	d.fields["pages.url"] == "keep"
	d.fields.banner_clicks == "keep"
	not d.fields.ip_address
	not d.fields.session_id
	not d.fields.device_id
	not d.fields.passenger_id
	not d.fields.user_agent
	not d.fields["location.latitude"]
}

test_web_analytics_needs_cookie_consent if {
	d := decide("webstats-analytics", web, consents(["research", "cross_border"]))
	not d.allow
	reason_mentions(d, "no consent \"analytics_cookies\" is recorded")
	a := decide("webstats-analytics", object.union(web, {"purpose": "advertising"}), consents(["analytics_cookies", "cross_border"]))
	not a.allow
	reason_mentions(a, "no consent \"marketing_cookies\" is recorded")
}

# Registry and class integrity.
test_unknown_recipient_refused if {
	d := dgw.decision with input as object.union(ctx("kzpay-processor", ev("payment", "contract", []), {}), {"recipient": {"id": "nobody"}})
	not d.allow
	reason_mentions(d, "\"nobody\" is not in the recipients registry")
}

test_recipient_view_must_match_registry if {
	d := dgw.decision with input as object.union(ctx("kzpay-processor", ev("payment", "contract", []), {}), {"recipient": {"type": "it_provider"}})
	not d.allow
	reason_mentions(d, "type differs from the registry")
}

test_unknown_class_refused if {
	d := dgw.decision with input as object.union(ctx("kzpay-processor", ev("payment", "contract", []), {}), {"recipient": {"type": "data_broker"}})
	not d.allow
	reason_mentions(d, "\"data_broker\" is not one of the privacy policy's recipient classes")
}

test_malformed_input_refused if {
	d := dgw.decision with input as {"event": {"type": "payment"}, "recipient": {"id": "kzpay-processor"}}
	not d.allow
	reason_mentions(d, "input event.purpose is missing or not of type string")
	reason_mentions(d, "input recipient.country is missing or not of type string")
	reason_mentions(d, "input subject.erased is missing or not of type boolean")
}

# Each member of required_input, alone of the wrong type, is refused by name
# (the fast path well_formed_input must test every one of them).
test_each_malformed_member_refused if {
	well_formed := ctx("kzpay-processor", ev("payment", "contract", []), {})
	dgw.well_formed_input with input as well_formed
	every member, want in dgw.required_input {
		[part, key] := split(member, ".")
		d := dgw.decision with input as object.union(well_formed, {part: {key: null}})
		not d.allow
		reason_mentions(d, sprintf("input %s is missing or not of type %s", [member, want]))
	}
}

test_every_registry_type_is_a_class if {
	every entry in data.data.recipients {
		entry.type in dgw.recipient_classes
	}
}

test_police_checkin_and_baggage if {
	c := decide("kz-police", ev("checkin", "legal_obligation", ["KZ", "TR"]), {})
	c.allow
	c.fields["document.number"] == "keep"
	not c.fields.ssr_codes
	b := decide("kz-police", ev("baggage", "crime_prevention", ["KZ"]), {})
	b.allow
	b.fields["claim.contents"] == "keep"
	not b.fields["claim.amount_claimed"]
}

test_employer_booking if {
	d := decide("steppe-energy", object.union(corporate_trip, {"type": "booking"}), consents(["health_data"]))
	d.allow
	d.fields["itinerary.segments.flight_number"] == "keep"
	not d.fields.meal_code
	not d.fields["passenger.birth_date"]
	not d.fields["fare.amount"]
	not d.fields["contact.email"]
}

test_law_firm_baggage if {
	d := decide("legal-partners", ev("baggage", "legal_claim", ["KZ", "TR"]), consents(["cross_border"]))
	d.allow
	d.fields["claim.amount_claimed"] == "keep"
	d.fields["claimant.delivery_address.city"] == "keep"
}
