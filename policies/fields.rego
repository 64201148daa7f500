package dgw

# Field sets per recipient class and event type: the most a class may
# receive, and for which purposes (privacy policy §9.1.x, §7.1.1). Each
# recipient's contract scope (data/recipients.json) may narrow a set further
# or ask for a more protective operator (decision.rego). Paths are leaf
# paths of schemas/<event type>.avsc; `dgw policy check` reports any path no
# schema has. Special-category fields listed here are still subject to
# sensitive.rego.

# §9.1.1 with Reg (EC) 1107/2006 Art 6: the airport's PRM service gets the
# assistance request, limited to what the assistance needs (no diagnosis,
# no physician contact).
grants.airport_operator.assistance := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"passenger.language": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"seat": "keep",
		"ssr_codes": "keep",
		"mobility_aid.kind": "keep",
		"mobility_aid.battery": "keep",
		"mobility_aid.weight_kg": "keep",
		"medical.medif_required": "keep",
		"medical.oxygen_litres_per_minute": "keep",
		"escort": "keep",
	},
}

# §9.1.1, §7.1.1(1): passenger handling at the airport (departure control,
# boarding, baggage). SSRs only under sensitive.rego.
grants.airport_operator.checkin := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"flight.scheduled_arrival": "keep",
		"passenger.given_names": "keep",
		"passenger.family_name": "keep",
		"passenger.passenger_type": "keep",
		"seat": "keep",
		"checked_bags": "keep",
		"bag_tags": "keep",
		"boarding_status": "keep",
		"ssr_codes": "keep",
	},
}

# §9.1.1, §7.1.1(3): lost and found at the airport traces the bag; the
# claimant's contact details and statement stay with the airline.
grants.airport_operator.baggage := {
	"purposes": {"baggage"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"claimant.given_name": "keep",
		"claimant.family_name": "keep",
		"claim.reference": "keep",
		"claim.kind": "keep",
		"claim.bag_tags": "keep",
		"claim.bag_description": "keep",
		"claim.filed_at": "keep",
	},
}

# §9.1.1: the lounge admits the passenger of a flight it serves.
grants.lounge_operator.checkin := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"passenger.given_names": "keep",
		"passenger.family_name": "keep",
		"passenger.passenger_type": "keep",
	},
}

# §9.1.1, §7.1.1(4): lounge access by frequent-flyer tier; never the
# membership number, contacts or preferences.
grants.lounge_operator.loyalty := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"member.tier": "keep",
		"member.given_name": "keep",
		"member.family_name": "keep",
		"activity.flight_number": "keep",
	},
}

# §9.1.2, §7.1.1(2): API data (Directive 2004/82/EC Art 3(2); Regulation
# (EU) 2025/12; PNR Directive Annex I item 18) for flights to or from the
# authority's State; item 5 destination address and contact phone, item 14
# seat, item 16 baggage, item 10 travel status. Never SSRs or meal codes
# (PNR Directive Art 6(1), Art 13(4)).
grants.border_authority.checkin := {
	"purposes": {"border_control", "legal_obligation", "contract"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"flight.scheduled_arrival": "keep",
		"passenger.given_names": "keep",
		"passenger.family_name": "keep",
		"passenger.sex": "keep",
		"passenger.birth_date": "keep",
		"passenger.nationality": "keep",
		"passenger.residence_country": "keep",
		"passenger.passenger_type": "keep",
		"document.type": "keep",
		"document.number": "keep",
		"document.issuing_country": "keep",
		"document.expiry_date": "keep",
		"visa.number": "keep",
		"visa.type": "keep",
		"visa.issuing_country": "keep",
		"visa.expiry_date": "keep",
		"destination_address.line1": "keep",
		"destination_address.city": "keep",
		"destination_address.country": "keep",
		"contact_phone": "keep",
		"seat": "keep",
		"checked_bags": "keep",
		"bag_tags": "keep",
		"boarding_status": "keep",
	},
}

# §9.1.2: PNR data elements of Directive (EU) 2016/681 Annex I: 1 record
# locator, 2 reservation date, 3 and 7 itinerary, 4 names, 5 contacts,
# 8 frequent flyer, 9 travel agency, 10 status, 13 ticket and fare,
# 14 seat, 17 other travellers, 18 API. No meal codes or SSR free text
# (Art 13(4)); no payment event (no route, Art 8 push per flight).
grants.border_authority.booking := {
	"purposes": {"border_control", "legal_obligation", "contract"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"booked_at": "keep",
		"booking_channel": "keep",
		"agency_code": "keep",
		"passenger.title": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"passenger.gender": "keep",
		"passenger.birth_date": "keep",
		"passenger.passenger_type": "keep",
		"passenger.citizenship": "keep",
		"passenger.residence_country": "keep",
		"contact.email": "keep",
		"contact.phone": "keep",
		"contact.address.line1": "keep",
		"contact.address.city": "keep",
		"contact.address.postal_code": "keep",
		"contact.address.country": "keep",
		"itinerary.segments.marketing_carrier": "keep",
		"itinerary.segments.operating_carrier": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.cabin": "keep",
		"itinerary.segments.fare_class": "keep",
		"itinerary.segments.seat": "keep",
		"itinerary.segments.status": "keep",
		"ticket_number": "keep",
		"frequent_flyer_number": "keep",
		"companions": "keep",
		"fare.amount": "keep",
		"fare.currency": "keep",
	},
}

# §9.1.2, §9.1.7, §7.1.1(9), (10): police on a lawful request, for legal
# obligations and crime prevention only. Card numbers masked (PCI DSS 3.4.1).
grants.law_enforcement.booking := {
	"purposes": {"legal_obligation", "crime_prevention"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"booked_at": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"passenger.gender": "keep",
		"passenger.birth_date": "keep",
		"passenger.citizenship": "keep",
		"passenger.residence_country": "keep",
		"contact.email": "keep",
		"contact.phone": "keep",
		"contact.address.line1": "keep",
		"contact.address.city": "keep",
		"contact.address.postal_code": "keep",
		"contact.address.country": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.seat": "keep",
		"itinerary.segments.status": "keep",
		"ticket_number": "keep",
		"companions": "keep",
	},
}

grants.law_enforcement.checkin := {
	"purposes": {"legal_obligation", "crime_prevention"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"passenger.given_names": "keep",
		"passenger.family_name": "keep",
		"passenger.sex": "keep",
		"passenger.birth_date": "keep",
		"passenger.nationality": "keep",
		"document.type": "keep",
		"document.number": "keep",
		"document.issuing_country": "keep",
		"document.expiry_date": "keep",
		"visa.number": "keep",
		"visa.type": "keep",
		"visa.issuing_country": "keep",
		"visa.expiry_date": "keep",
		"seat": "keep",
		"bag_tags": "keep",
		"boarding_status": "keep",
	},
}

grants.law_enforcement.payment := {
	"purposes": {"legal_obligation", "crime_prevention"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"payment_id": "keep",
		"amount": "keep",
		"currency": "keep",
		"method": "keep",
		"card.holder_name": "keep",
		"card.number": "mask",
		"card.brand": "keep",
		"card.issuing_bank": "keep",
		"billing_address.line1": "keep",
		"billing_address.city": "keep",
		"billing_address.postal_code": "keep",
		"billing_address.country": "keep",
		"payer.name": "keep",
		"payer.email": "keep",
		"authorisation_code": "keep",
		"risk.ip_address": "keep",
		"risk.device_id": "keep",
	},
}

grants.law_enforcement.baggage := {
	"purposes": {"legal_obligation", "crime_prevention"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"claimant.given_name": "keep",
		"claimant.family_name": "keep",
		"claimant.email": "keep",
		"claimant.phone": "keep",
		"claim.reference": "keep",
		"claim.kind": "keep",
		"claim.bag_tags": "keep",
		"claim.bag_description": "keep",
		"claim.contents": "keep",
		"claim.statement": "keep",
		"claim.filed_at": "keep",
	},
}

# §9.1.3 with EDPB Guidelines 2/2018: the agency gets back the booking it
# made, what it needs to service it; no documents, no special categories.
grants.travel_agency.booking := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"booked_at": "keep",
		"booking_channel": "keep",
		"agency_code": "keep",
		"passenger.title": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"passenger.gender": "keep",
		"passenger.passenger_type": "keep",
		"contact.email": "keep",
		"contact.phone": "keep",
		"itinerary.segments.marketing_carrier": "keep",
		"itinerary.segments.operating_carrier": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.cabin": "keep",
		"itinerary.segments.fare_class": "keep",
		"itinerary.segments.seat": "keep",
		"itinerary.segments.status": "keep",
		"ticket_number": "keep",
		"frequent_flyer_number": "keep",
		"companions": "keep",
		"fare.amount": "keep",
		"fare.currency": "keep",
	},
}

# §9.1.3: settlement of the agency's booking; no card data.
grants.travel_agency.payment := {
	"purposes": {"contract"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"agency_code": "keep",
		"payment_id": "keep",
		"amount": "keep",
		"currency": "keep",
		"method": "keep",
		"authorisation_code": "keep",
	},
}

# §9.1.4, §7.1.1(4): ground transfers (name, phone, flight times) and
# catering (meal code, flight, seat: POLICY-REFERENCE §7 "a code plus seat
# or flight, not religion labels"). Each provider's contract picks its part.
grants.service_provider.booking := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"contact.phone": "keep",
		"meal_code": "keep",
		"itinerary.segments.operating_carrier": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.seat": "keep",
	},
}

grants.service_provider.checkin := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"meal_code": "keep",
		"seat": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.scheduled_departure": "keep",
	},
}

# §9.1.5, §7.1.1(7), (8): research and surveys on pseudonymised data:
# identifiers hashed with the recipient's key, dates generalised, birth
# dates as age bands; no names, contacts, documents or booking references.
grants.market_research.booking := {
	"purposes": {"research", "survey"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"passenger_id": "hash",
		"point_of_sale": "keep",
		"booking_channel": "keep",
		"booked_at": "generalise",
		"passenger.gender": "keep",
		"passenger.birth_date": "generalise",
		"passenger.residence_country": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "generalise",
		"itinerary.segments.cabin": "keep",
		"itinerary.segments.fare_class": "keep",
		"fare.amount": "keep",
		"fare.currency": "keep",
	},
}

grants.market_research.loyalty := {
	"purposes": {"research", "survey"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"passenger_id": "hash",
		"point_of_sale": "keep",
		"member.number": "hash",
		"member.tier": "keep",
		"member.birth_date": "generalise",
		"member.residence_country": "keep",
		"member.enrolled_on": "generalise",
		"member.preferences": "keep",
		"activity.kind": "keep",
		"activity.points": "keep",
		"survey_answers.question": "keep",
		"survey_answers.answer": "keep",
	},
}

# §9.1.6 with GDPR Art 28: a processor processes on the airline's documented
# instructions only, so it gets what its data-processing agreement (the
# contract scope) lists, for any of the airline's purposes. Card security
# codes and special categories are still withheld (sensitive.rego).
grants.it_provider[event_type] := {
	"purposes": purpose_basis_purposes,
	"fields": {path: processor_op(ops) | some path, ops in scope},
} if {
	input.recipient.type == "it_provider"
	some event_type, scope in registry_entry.scope
}

purpose_basis_purposes := {purpose | some purpose, _ in purpose_basis} | {"crime_prevention"}

# The most revealing operator the agreement allows.
processor_op(ops) := rank_op[min({op_rank[op] | some op in ops})]

# §9.1.7, §7.1.1(3): complaint and baggage-dispute investigation.
grants.investigator.baggage := {
	"purposes": {"baggage", "legal_claim"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"claimant.given_name": "keep",
		"claimant.family_name": "keep",
		"claimant.email": "keep",
		"claimant.phone": "keep",
		"claimant.delivery_address.line1": "keep",
		"claimant.delivery_address.city": "keep",
		"claimant.delivery_address.postal_code": "keep",
		"claimant.delivery_address.country": "keep",
		"claim.reference": "keep",
		"claim.kind": "keep",
		"claim.bag_tags": "keep",
		"claim.bag_description": "keep",
		"claim.contents": "keep",
		"claim.statement": "keep",
		"claim.amount_claimed": "keep",
		"claim.currency": "keep",
		"claim.filed_at": "keep",
	},
}

grants.investigator.booking := {
	"purposes": {"baggage", "legal_claim"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"contact.email": "keep",
		"contact.phone": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.status": "keep",
		"ticket_number": "keep",
		"fare.amount": "keep",
		"fare.currency": "keep",
	},
}

# §9.1.8: flight details and incident reports of business trips the
# employer paid for; never medical details, meals, documents, birth dates
# or payment data (POLICY-REFERENCE §7 notes).
grants.employer.corporate := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"corporate_account": "keep",
		"employee.employee_id": "keep",
		"employee.given_name": "keep",
		"employee.family_name": "keep",
		"segments.flight_number": "keep",
		"segments.departure_airport": "keep",
		"segments.departure_country": "keep",
		"segments.arrival_airport": "keep",
		"segments.arrival_country": "keep",
		"segments.departure_time": "keep",
		"segments.cabin": "keep",
		"incident.kind": "keep",
		"incident.reported_at": "keep",
		"incident.summary": "keep",
	},
}

grants.employer.booking := {
	"purposes": {"contract", "service"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"corporate_account": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"itinerary.segments.marketing_carrier": "keep",
		"itinerary.segments.operating_carrier": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.departure_country": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.arrival_country": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.cabin": "keep",
		"itinerary.segments.status": "keep",
	},
}

# §9.1.9: payment processing. The acquirer needs the full card number
# (PCI DSS cardholder data); never the security code (PCI DSS 3.3.1.2,
# sensitive.rego).
grants.payment_processor.payment := {
	"purposes": {"contract"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"payment_id": "keep",
		"amount": "keep",
		"currency": "keep",
		"method": "keep",
		"card.holder_name": "keep",
		"card.number": "keep",
		"card.expiry": "keep",
		"card.brand": "keep",
		"card.issuing_bank": "keep",
		"billing_address.line1": "keep",
		"billing_address.city": "keep",
		"billing_address.postal_code": "keep",
		"billing_address.country": "keep",
		"payer.is_passenger": "keep",
		"payer.name": "keep",
		"authorisation_code": "keep",
	},
}

# §9.1.9 "where needed, fraud checks", §7.1.1(10): risk signals with the
# card number and identifiers pseudonymised (PCI DSS 3.5.1.1 keyed hash);
# no names, no billing street address.
grants.anti_fraud.payment := {
	"purposes": {"contract", "crime_prevention"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"payment_id": "keep",
		"amount": "keep",
		"currency": "keep",
		"method": "keep",
		"card.number": "hash",
		"card.brand": "keep",
		"card.issuing_bank": "keep",
		"billing_address.postal_code": "keep",
		"billing_address.country": "keep",
		"payer.is_passenger": "keep",
		"payer.email": "hash",
		"risk.ip_address": "keep",
		"risk.device_id": "hash",
		"risk.email_age_days": "keep",
	},
}

# §9.1.10: enforcing a contract with the customer (legal claims).
grants.law_firm.booking := {
	"purposes": {"legal_claim"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"booked_at": "keep",
		"passenger.title": "keep",
		"passenger.given_name": "keep",
		"passenger.family_name": "keep",
		"contact.email": "keep",
		"contact.phone": "keep",
		"contact.address.line1": "keep",
		"contact.address.city": "keep",
		"contact.address.postal_code": "keep",
		"contact.address.country": "keep",
		"itinerary.segments.flight_number": "keep",
		"itinerary.segments.departure_airport": "keep",
		"itinerary.segments.arrival_airport": "keep",
		"itinerary.segments.departure_time": "keep",
		"itinerary.segments.status": "keep",
		"ticket_number": "keep",
		"fare.amount": "keep",
		"fare.currency": "keep",
	},
}

grants.law_firm.payment := {
	"purposes": {"legal_claim"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"payment_id": "keep",
		"amount": "keep",
		"currency": "keep",
		"method": "keep",
		"card.holder_name": "keep",
		"card.number": "mask",
		"billing_address.line1": "keep",
		"billing_address.city": "keep",
		"billing_address.postal_code": "keep",
		"billing_address.country": "keep",
		"authorisation_code": "keep",
	},
}

grants.law_firm.baggage := {
	"purposes": {"legal_claim"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"record_locator": "keep",
		"flight.carrier": "keep",
		"flight.flight_number": "keep",
		"flight.departure_airport": "keep",
		"flight.departure_country": "keep",
		"flight.arrival_airport": "keep",
		"flight.arrival_country": "keep",
		"flight.scheduled_departure": "keep",
		"claimant.given_name": "keep",
		"claimant.family_name": "keep",
		"claimant.email": "keep",
		"claimant.phone": "keep",
		"claimant.delivery_address.line1": "keep",
		"claimant.delivery_address.city": "keep",
		"claimant.delivery_address.postal_code": "keep",
		"claimant.delivery_address.country": "keep",
		"claim.reference": "keep",
		"claim.kind": "keep",
		"claim.bag_tags": "keep",
		"claim.bag_description": "keep",
		"claim.contents": "keep",
		"claim.statement": "keep",
		"claim.amount_claimed": "keep",
		"claim.currency": "keep",
		"claim.filed_at": "keep",
	},
}

# §9.1.11, §4.1.1 "statistical": site usage without personal information:
# no passenger or session id, IP or MAC address, device id, user agent or
# precise location.
grants.web_analytics.websession := {
	"purposes": {"research", "advertising"},
	"fields": {
		"event_id": "keep",
		"occurred_at": "keep",
		"point_of_sale": "keep",
		"operating_system": "keep",
		"location.country": "keep",
		"referrer": "keep",
		"pages.url": "keep",
		"pages.viewed_at": "keep",
		"pages.duration_ms": "keep",
		"searches": "keep",
		"banner_clicks": "keep",
	},
}
