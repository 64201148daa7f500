package dgw

# Recipient classes of the privacy policy §9.1 (POLICY-REFERENCE §4). A
# registry entry's "type" must be one of these; anything else is refused.
recipient_classes := {
	"airport_operator", # §9.1.1 airport operators, local services
	"lounge_operator", # §9.1.1 airport lounge operators
	"border_authority", # §9.1.2 customs, immigration, border control
	"law_enforcement", # §9.1.2, §9.1.7 police, regulators
	"travel_agency", # §9.1.3 travel agencies organising the trip
	"service_provider", # §9.1.4 transfers, invoicing, catering
	"market_research", # §9.1.5 research, marketing and survey companies
	"it_provider", # §9.1.6 IT providers processing on the airline's behalf
	"investigator", # §9.1.7 complaint and dispute investigators
	"employer", # §9.1.8 corporate, business and government clients
	"payment_processor", # §9.1.9 credit and payment companies
	"anti_fraud", # §9.1.9 anti-fraud providers
	"law_firm", # §9.1.10 law firms and courts
	"web_analytics", # §9.1.11 other websites: usage data without personal information
}

# Public authorities: they receive data under the airline's legal
# obligations (§7.1.1(2), (9), (10); GDPR Art 6(1)(c)).
authority_classes := {"border_authority", "law_enforcement"}

# Purposes that rest on a legal duty of the airline (§7.1.1(2), (9), (10)).
legal_duty_purposes := {"border_control", "legal_obligation", "crime_prevention"}

# Purposes of carrying out the passenger's own trip (§7.1.1(1), (3), (4)).
trip_purposes := {"contract", "service", "baggage"}

# §9.1: the privacy policy names every class of recipient; no other class
# receives personal data.
recipient_refusal contains msg if {
	not input.recipient.type in recipient_classes
	msg := sprintf("recipient class %q is not one of the privacy policy's recipient classes (§9.1)", [input.recipient.type])
}

# The class grant for this event type (fields.rego); undefined when no rule
# maps the class to the event type.
grant := grants[input.recipient.type][input.event.type]

# Anything not mapped is refused (DESIGN.md principle 1).
recipient_refusal contains msg if {
	input.recipient.type in recipient_classes
	not grants[input.recipient.type][input.event.type]
	msg := sprintf("no rule lets recipient class %s receive %s events", [input.recipient.type, input.event.type])
}

# §7.1 purpose limitation: each grant lists the purposes it serves.
recipient_refusal contains msg if {
	not input.event.purpose in grant.purposes
	msg := sprintf("recipient class %s receives %s events only for the purposes %s, not for %q", [input.recipient.type, input.event.type, concat(", ", sort(grant.purposes)), input.event.purpose])
}

# Countries the event's trip touches (route, origin, destination).
route_countries contains country if some country in input.event.route

route_countries contains input.event.origin_country if input.event.origin_country != ""

route_countries contains input.event.destination_country if input.event.destination_country != ""

# §9.1.1 and §9.1.4: airport and lounge operators and local services serve
# the trip where they are. §9.1.2 with PNR Directive Art 8(1) and API
# Directive Art 3(1): a border authority receives data for flights to or from
# its own State only.
route_classes := {"airport_operator", "lounge_operator", "service_provider", "border_authority"}

# §9.1.1, §9.1.2, §9.1.4: local recipients and border authorities only for
# trips through their own country.
refusal contains msg if {
	input.recipient.type in route_classes
	not input.recipient.country in facts.served_countries
	msg := sprintf("recipient class %s receives data only for trips to, from or through its own country (%s), which this trip does not touch", [input.recipient.type, input.recipient.country])
}

# §9.1.3 with EDPB Guidelines 2/2018: a travel agency receives only the
# bookings it made (its agency code), and only what the trip needs.
agency_match if {
	input.recipient.agency_code != ""
	input.event.agency_code == input.recipient.agency_code
}

refusal contains "a travel agency receives only bookings made through it: the event's agency code is not the recipient's (§9.1.3)" if {
	input.recipient.type == "travel_agency"
	not agency_match
}

# §9.1.8: an employer receives flight details and incident reports only for
# business trips it paid for, under its own corporate account.
employer_match if {
	input.event.employer_paid == true
	input.recipient.corporate_account != ""
	input.event.corporate_account == input.recipient.corporate_account
}

refusal contains "an employer receives only trips it paid for under its own corporate account (§9.1.8)" if {
	input.recipient.type == "employer"
	not employer_match
}

# Legal basis of the disclosure (§7.1; GDPR Art 6(1)):
# - authorities receive data under the airline's legal obligations
#   (§7.1.1(2), (9), (10); GDPR Art 6(1)(c)), whatever the event was
#   collected for;
# - private recipients of crime-prevention data (anti-fraud screening, §9.1.9)
#   rest on the airline's legitimate interest (GDPR Art 6(1)(f), recital 47);
# - otherwise the basis of the purpose (purpose_basis).
basis := "legal_obligation" if {
	input.recipient.type in authority_classes
	input.event.purpose in grant.purposes
} else := "legitimate_interest" if {
	input.event.purpose == "crime_prevention"
} else := b if {
	b := purpose_basis[input.event.purpose]
} else := "none"

purpose_basis := {
	"contract": "contract", # §7.1.1(1): performing the contract
	"baggage": "contract", # §7.1.1(3): baggage, claims
	"service": "contract", # §7.1.1(4): catering and services
	"border_control": "legal_obligation", # §7.1.1(2): customs and immigration
	"legal_obligation": "legal_obligation", # §7.1.1(9): legal compliance
	"campaign": "consent", # §7.1.1(5), §16
	"advertising": "consent", # §7.1.1(6), §16
	"survey": "consent", # §7.1.1(7)
	"research": "consent", # §7.1.1(8)
	"legal_claim": "legitimate_interest", # §9.1.10; GDPR Art 6(1)(f), Art 9(2)(f)
}
