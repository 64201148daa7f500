package dgw

# Subject state: consents, objections, minors, erasure (privacy policy §7,
# §8, §10, §16, §17). The gateway fills input.subject from subject requests
# and from consent fields of the event (schemas: "subject.consent.<name>").
#
# Consent keys read here:
#   <purpose>          campaign, advertising, survey, research (§7.1, §16)
#   marketing          the four purposes above at once, as a passenger opts in
#                      or out of "marketing" (dgw subject request publishes one
#                      record per purpose; another tool may publish this one)
#   analytics_cookies  cookie consent for web statistics (§13)
#   marketing_cookies  cookie consent for advertising statistics (§13)
#   health_data        explicit consent to special categories (sensitive.rego)
#   cross_border       consent to a transfer abroad that states the transfer
#                      (Law 94-V Art 8, Art 16; GDPR Art 49(1)(a))

# consent(key) holds when the subject has given the consent and not withdrawn
# it. A marketing consent gives each marketing purpose; a withdrawal at either
# level wins over a consent at the other, since the compacted subject topic
# keeps no order between two keys (fail closed).
consent(key) if {
	input.subject.consents[key] == true
	not marketing_withdrawn(key)
}

consent(key) if {
	key in consent_purposes
	input.subject.consents.marketing == true
	not input.subject.consents[key] == false
}

# consent_withdrawn(key) holds when the subject withdrew (§16; GDPR Art 7(3)),
# the consent itself or, for a marketing purpose, marketing.
consent_withdrawn(key) if input.subject.consents[key] == false

consent_withdrawn(key) if marketing_withdrawn(key)

marketing_withdrawn(key) if {
	key in consent_purposes
	input.subject.consents.marketing == false
}

# §7.1, §7.1.1(5)-(8), §16: campaigns, advertising, surveys and research rest
# on the customer's consent to that purpose (GDPR Art 6(1)(a)).
consent_purposes := {"campaign", "advertising", "survey", "research"}

required_consent contains input.event.purpose if {
	input.event.purpose in consent_purposes
	input.recipient.type != "web_analytics"
}

# §13, §9.1.11: web statistics rest on the cookie consent of the session.
required_consent contains "analytics_cookies" if {
	input.recipient.type == "web_analytics"
	input.event.purpose == "research"
}

required_consent contains "marketing_cookies" if {
	input.recipient.type == "web_analytics"
	input.event.purpose == "advertising"
}

# §9.1.5: market research companies act on the research consent only.
required_consent contains "research" if input.recipient.type == "market_research"

# §7.1, GDPR Art 6(1)(a): no consent, no consent-based disclosure.
refusal contains msg if {
	some key in required_consent
	not consent(key)
	not consent_withdrawn(key)
	msg := sprintf("no consent %q is recorded, which recipient class %s needs for purpose %q (§7.1; GDPR Art 6(1)(a))", [key, input.recipient.type, input.event.purpose])
}

# §16, GDPR Art 7(3): a withdrawn consent counts as none.
refusal contains msg if {
	some key in required_consent
	consent_withdrawn(key)
	msg := sprintf("the consent %q was withdrawn (§16; GDPR Art 7(3))", [key])
}

# §8 and GDPR Art 21: an objection to a purpose stops it. An objection does
# not override a legal duty (§8 "unless contrary to law"; Art 21(1) covers
# Art 6(1)(e) and (f) only) nor the defence of legal claims (Art 21(1)).
objection_exempt := legal_duty_purposes | {"legal_claim"}

# objected(purpose): the passenger objected to the purpose, or to marketing,
# which covers every marketing purpose (GDPR Art 21(2), (3)).
objected(purpose) if purpose in input.subject.objections

objected(purpose) if {
	purpose in consent_purposes
	"marketing" in input.subject.objections
}

# §8, GDPR Art 21: the objection stops the purpose objected to. It stops
# contract, service and baggage too: §8 promises an objection to "use and
# processing" unless contrary to law, wider than GDPR Art 21, and the rule
# fails closed. `dgw subject request` publishes such an objection only with
# --dpo-approved; whether to honour it is open for the DPO (README).
refusal contains msg if {
	objected(input.event.purpose)
	not input.event.purpose in objection_exempt
	msg := sprintf("the passenger objected to the purpose %q (§8; GDPR Art 21)", [input.event.purpose])
}

# §16, GDPR Art 7(3): a withdrawn consent to the event's own purpose stops
# that purpose too, unless the purpose rests on a legal duty.
refusal contains msg if {
	consent_withdrawn(input.event.purpose)
	not input.event.purpose in required_consent
	not input.event.purpose in objection_exempt
	msg := sprintf("the passenger withdrew consent for the purpose %q (§16; GDPR Art 7(3))", [input.event.purpose])
}

# §17: minors (under 18, KZ Law No. 345 Art 1) are never used for
# marketing, surveys or research, and never reach market research companies.
refusal contains "the passenger is a minor: no marketing, survey or research use (§17)" if {
	input.subject.minor == true
	input.event.purpose in consent_purposes
}

refusal contains "the passenger is a minor: no market research (§17)" if {
	input.subject.minor == true
	input.recipient.type == "market_research"
}

# §8, §10 and GDPR Art 17(3)(b): after erasure, data goes only to
# authorities the airline must by law inform.
erasure_exempt if {
	input.recipient.type in authority_classes
	input.event.purpose in legal_duty_purposes
}

refusal contains "the passenger's data was erased: only authorities under a legal obligation receive it (§10; GDPR Art 17(3)(b))" if {
	input.subject.erased == true
	not erasure_exempt
}
