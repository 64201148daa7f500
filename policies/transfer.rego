package dgw

# Cross-border transfers. A disclosure is a transfer under a regime when the
# recipient processes the data outside that regime's territory:
# - Law 94-V Art 16: outside Kazakhstan;
# - GDPR Chapter V: outside the EEA. EDPB Guidelines 05/2021: a controller
#   bound by Art 3(2) that discloses data to a recipient in a third country
#   transfers it, so a Kazakh recipient of a GDPR passenger's data is a
#   transfer too (Kazakhstan has no adequacy decision);
# - UK GDPR Chapter V: outside the United Kingdom.
# Every applicable regime under which the disclosure is a transfer needs a
# mechanism; otherwise the disclosure is refused.

# Law 94-V Art 16: a recipient outside Kazakhstan.
abroad contains "kz" if not input.recipient.country == countries.controller

# GDPR Art 44: a recipient outside the EEA, when the GDPR applies.
abroad contains "eu_gdpr" if {
	"eu_gdpr" in regimes
	not input.recipient.country in eea
}

# UK GDPR Art 44: a recipient outside the United Kingdom, when it applies.
abroad contains "uk_gdpr" if {
	"uk_gdpr" in regimes
	not input.recipient.country in uk
}

# The mechanism of each regime that sees a transfer (undefined: none fits).
transfer_mechanisms["kz"] := kz_mechanism if "kz" in abroad

transfer_mechanisms["eu_gdpr"] := eu_mechanism if "eu_gdpr" in abroad

transfer_mechanisms["uk_gdpr"] := uk_mechanism if "uk_gdpr" in abroad

# Per regime: "domestic" when it sees no transfer; for a regime that does,
# its mechanism, or "none" when no mechanism fits.
regime_mechanisms := object.union_n([
	{regime: "domestic" | some regime in regimes},
	{regime: "none" | some regime in abroad; regime in regimes},
	{regime: m | some regime in abroad; regime in regimes; m := transfer_mechanisms[regime]},
])

# The decision's transfer document (README.md, "Output").
transfer := {
	"cross_border": count(abroad) > 0,
	"mechanism": mechanism,
	"regimes": regime_mechanisms,
}

# One word when no transfer happens; otherwise the mechanism of each regime
# that sees a transfer, in regime_order, joined by "+" (e.g. "kz_consent+dpf").
mechanism := "domestic" if count(abroad) == 0

else := concat("+", [m | some regime in regime_order; m := transfer_mechanisms[regime]])

# Law 94-V Art 16, GDPR and UK GDPR Art 44: no transfer without a mechanism.
refusal contains msg if {
	some regime in abroad
	not transfer_mechanisms[regime]
	msg := no_mechanism_reason[regime]
}

# One reason per regime, each written only when that regime refuses.
no_mechanism_reason["kz"] := sprintf("transfer to %s under Law 94-V Art 16: the country is not listed as ensuring protection, no ratified treaty or Kazakh law provides for it, and there is no consent \"cross_border\"", [input.recipient.country])

no_mechanism_reason["eu_gdpr"] := sprintf("transfer to %s under GDPR Chapter V: no adequacy decision covers the recipient, it has no Art 46 safeguard (scc, bcr), and no Art 49 derogation fits purpose %q", [input.recipient.country, input.event.purpose])

no_mechanism_reason["uk_gdpr"] := sprintf("transfer to %s under UK GDPR Chapter V: no adequacy regulation covers the recipient, it has no Art 46 safeguard (uk_idta, uk_addendum, bcr_uk), and no Art 49 derogation fits purpose %q", [input.recipient.country, input.event.purpose])

# Law 94-V Art 16: the grounds below, in order. The first three follow from
# the recipient and the purpose alone (kz_ground; the gateway computes them
# once per recipient, event type and purpose), the last from the subject.
kz_mechanism := m if m := kz_ground

# Art 16(2) ground 1 with Art 8: the subject's consent that states the
# cross-border transfer.
else := "kz_consent" if consent("cross_border")

# Law 94-V Art 16(1): the recipient's country ensures the protection of
# personal data. No official list exists, so a country counts only when the
# registry data lists it (countries.kz_protected).
kz_ground := "kz_protected_country" if input.recipient.country in countries.kz_protected

# Art 16(2) ground 2: an international treaty ratified by Kazakhstan.
else := "kz_treaty" if kz_instrument(countries.kz_treaties)

# Art 16(2) ground 3: a Kazakh law, to protect the constitutional order,
# public order, rights and freedoms, health or morals.
else := "kz_law" if kz_instrument(countries.kz_law_grounds)

# A treaty or law entry covers this recipient's country and class and the
# event's purpose.
kz_instrument(instruments) if {
	some instrument in instruments
	covers_country(instrument.countries)
	input.recipient.type in instrument.recipient_types
	input.event.purpose in instrument.purposes
}

covers_country(list) if "*" in list

covers_country(list) if input.recipient.country in list

# GDPR Art 45: adequacy decision. A "commercial" decision (Canada, Japan)
# covers private-sector recipients only; the US decision covers only
# organisations certified under the EU-US Data Privacy Framework.
eu_adequacy_mechanism := "adequacy" if {
	adequacy := countries.eu_adequacy[input.recipient.country]
	not adequacy.condition
}

eu_adequacy_mechanism := "adequacy" if {
	countries.eu_adequacy[input.recipient.country].condition == "commercial"
	not input.recipient.type in authority_classes
}

eu_adequacy_mechanism := "dpf" if {
	countries.eu_adequacy[input.recipient.country].condition == "dpf"
	"dpf" in input.recipient.safeguards
}

# GDPR Art 45 and 46 (eu_safeguard), then the Art 49 derogations.
eu_mechanism := m if m := eu_safeguard

else := m if m := art49_derogation

# GDPR Art 45, then Art 46(2)(b) binding corporate rules, Art 46(2)(c)
# standard contractual clauses (2021/914). They follow from the recipient
# alone (the gateway computes them once per recipient).
eu_safeguard := m if m := eu_adequacy_mechanism

else := "bcr" if "bcr" in input.recipient.safeguards

else := "scc" if "scc" in input.recipient.safeguards

# UK GDPR Art 45 with DPA 2018 s.17A and Sch 21 para 5: the EEA and the
# listed countries; the US only for the UK Extension to the DPF (SI 2023/1028).
uk_adequacy_mechanism := "adequacy" if input.recipient.country in eea

uk_adequacy_mechanism := "adequacy" if {
	adequacy := countries.uk_adequacy[input.recipient.country]
	not adequacy.condition
}

uk_adequacy_mechanism := "adequacy" if {
	countries.uk_adequacy[input.recipient.country].condition == "commercial"
	not input.recipient.type in authority_classes
}

uk_adequacy_mechanism := "dpf_uk" if {
	countries.uk_adequacy[input.recipient.country].condition == "dpf_uk"
	"dpf_uk" in input.recipient.safeguards
}

# UK GDPR Art 45 and 46 (uk_safeguard), then Art 49.
uk_mechanism := m if m := uk_safeguard

else := m if m := art49_derogation

# UK GDPR Art 45, then Art 46: ICO-approved BCRs, the IDTA or the UK Addendum
# to the EU SCCs (s.119A DPA 2018, since 21 March 2022). They follow from the
# recipient alone (the gateway computes them once per recipient).
uk_safeguard := m if m := uk_adequacy_mechanism

else := "bcr_uk" if "bcr_uk" in input.recipient.safeguards

else := "uk_idta" if "uk_idta" in input.recipient.safeguards

else := "uk_addendum" if "uk_addendum" in input.recipient.safeguards

# GDPR and UK GDPR Art 49(1): derogations for specific situations, read
# restrictively (EDPB Guidelines 2/2018), each fitting the purpose.
# (d) important reasons of public interest: passenger data to the border
#     authority of a State the flight serves (API and PNR framework, ICAO
#     Annex 9), or to police under an agreement recognised by Art 48.
art49_derogation := "art49_public_interest" if public_interest_transfer

# (e) establishment, exercise or defence of legal claims.
else := "art49_legal_claims" if input.event.purpose == "legal_claim"

# (b), (c) performance of the passenger's own contract of carriage, or of a
# contract in the passenger's interest (a corporate travel contract).
else := "art49_contract" if contract_transfer

# (f) vital interests of a passenger who cannot consent.
else := "art49_vital_interests" if input.subject.vital_interest == true

# (a) explicit consent to the transfer, informed of its risks.
else := "art49_consent" if consent("cross_border")

public_interest_transfer if {
	input.recipient.type == "border_authority"
	input.event.purpose in grant.purposes
	input.recipient.country in facts.served_countries
}

public_interest_transfer if {
	input.recipient.type == "law_enforcement"
	input.event.purpose in legal_duty_purposes
	input.recipient.country in countries.gdpr_art48_agreements
}

# Classes that carry out the passenger's own trip or a contract in the
# passenger's interest (§9.1.1, §9.1.3, §9.1.4, §9.1.7, §9.1.8, §9.1.9).
own_trip_classes := {
	"airport_operator", "lounge_operator", "travel_agency", "service_provider",
	"payment_processor", "employer", "investigator",
}

contract_transfer if {
	input.recipient.type in own_trip_classes
	input.event.purpose in trip_purposes
}

# GDPR and UK GDPR Art 48: a request of a third-country authority is
# recognised only under an international agreement such as a mutual legal
# assistance treaty (countries.gdpr_art48_agreements).
refusal contains msg if {
	input.recipient.type == "law_enforcement"
	some regime in abroad
	regime in {"eu_gdpr", "uk_gdpr"}
	not input.recipient.country in countries.gdpr_art48_agreements
	msg := sprintf("police of %s are a third-country authority: under GDPR Art 48 their request needs an international agreement, and none is recorded", [input.recipient.country])
}
