package dgw

# Special categories (privacy policy §4.1.1 "sensitive" and "health"; GDPR
# Art 9; PNR Directive Art 13(4)): health SSRs and medical data, meal codes
# that reveal religion or health (IATA SPML codes, POLICY-REFERENCE §6.6),
# free-text SSRs, languages that may hint at ethnic origin. Every schema
# field of category "health" or "sensitive" must be listed here; the gateway
# refuses to start otherwise.
sensitive_fields := {
	"assistance": {
		"passenger.language",
		"ssr_codes",
		"mobility_aid.kind",
		"medical.medif_required",
		"medical.condition",
		"medical.oxygen_litres_per_minute",
		"medical.physician_contact",
		"explicit_consent",
	},
	"booking": {
		"meal_code",
		"special_service_requests.code",
		"special_service_requests.free_text",
	},
	"checkin": {
		"meal_code",
		"ssr_codes",
	},
	"corporate": {
		"incident.medical_details",
		"meal_code",
	},
}

# PCI DSS 4.0.1 req 3.3.1.2: the card verification code is sensitive
# authentication data and never leaves the airline, whatever a contract says.
never_released := {"payment": {"card.security_code"}}

# Classes that may need special-category data to serve the passenger:
# airports for assistance to persons with reduced mobility (§9.1.1; Reg (EC)
# 1107/2006 Art 6), caterers and other service providers for special meals
# (§9.1.4, §7.1.1(4)), and IT providers processing on the airline's behalf
# (§9.1.6; GDPR Art 28). Border authorities, employers, market research,
# anti-fraud providers and every other class never receive them (PNR
# Directive Art 13(4); §9.1.8; POLICY-REFERENCE §7 notes).
sensitive_classes := {"airport_operator", "service_provider", "it_provider"}

# GDPR Art 9(2)(a): explicit consent; Art 9(2)(c): vital interests of a
# passenger who cannot consent (input.subject.vital_interest, set by the
# gateway only in emergencies).
sensitive_ground := "explicit_consent" if consent("health_data")

else := "vital_interests" if input.subject.vital_interest == true

sensitive_allowed if {
	input.recipient.type in sensitive_classes
	sensitive_ground
}

# GDPR Art 9(1): special categories are withheld unless sensitive_allowed.
withheld contains path if {
	not sensitive_allowed
	some path in sensitive_fields[input.event.type]
}

# PCI DSS 3.3.1.2: never, whatever the class or consent.
withheld contains path if some path in never_released[input.event.type]

# Special-category fields the class grant names but this decision withholds
# (most grants name none: then withheld need not be worked out for this).
withheld_sensitive := {path |
	some path in granted_sensitive
	path in withheld
}

# Special-category fields the class grant names (they depend on the class
# and the event type alone: the gateway computes them once per recipient).
granted_sensitive := {path |
	some path in sensitive_fields[input.event.type]
	grant.fields[path]
}

# GDPR Art 9(2)(a), (c): tell the DPO what was withheld for want of a ground.
notes contains msg if {
	count(withheld_sensitive) > 0
	input.recipient.type in sensitive_classes
	msg := sprintf("special-category fields withheld without explicit consent \"health_data\" or vital interest (GDPR Art 9(2)): %s", [concat(", ", sort(withheld_sensitive))])
}

# GDPR Art 9, PNR Directive Art 13(4): tell the DPO what this class never gets.
notes contains msg if {
	count(withheld_sensitive) > 0
	not input.recipient.type in sensitive_classes
	msg := sprintf("special-category fields are never disclosed to recipient class %s (GDPR Art 9; PNR Directive Art 13(4)): %s", [input.recipient.type, concat(", ", sort(withheld_sensitive))])
}
