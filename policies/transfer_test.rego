# Every cross-border branch: which regime applies, and each mechanism of
# Law 94-V Art 16, GDPR and UK GDPR Chapter V.
package dgw_test

import data.dgw

# regime.rego: Law 94-V always; the GDPRs by point of sale, route or residence.
test_regime_kz_only if {
	dgw.regimes == {"kz"} with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ", "TR"]), {})
}

test_regime_eu_by_point_of_sale if {
	"eu_gdpr" in dgw.regimes with input as ctx("kzpay-processor", object.union(ev("booking", "contract", ["KZ"]), {"point_of_sale": "FR"}), {})
}

test_regime_eu_by_route if {
	"eu_gdpr" in dgw.regimes with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ", "NL"]), {})
}

test_regime_eu_by_residence if {
	"eu_gdpr" in dgw.regimes with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ"]), {"residence": "IT"})
}

test_regime_citizenship_alone_no_gdpr if {
	dgw.regimes == {"kz"} with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ"]), {"citizenship": "DE"})
}

test_regime_uk_by_point_of_sale_route_residence if {
	"uk_gdpr" in dgw.regimes with input as ctx("kzpay-processor", object.union(ev("booking", "contract", ["KZ"]), {"point_of_sale": "GB"}), {})
	"uk_gdpr" in dgw.regimes with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ", "GB"]), {})
	"uk_gdpr" in dgw.regimes with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ"]), {"residence": "GB"})
	not "eu_gdpr" in dgw.regimes with input as ctx("kzpay-processor", ev("booking", "contract", ["KZ", "GB"]), {})
}

# No transfer: a Kazakh recipient under Kazakh law only.
test_domestic if {
	d := decide("kzpay-processor", ev("payment", "contract", []), {})
	d.transfer == {"cross_border": false, "mechanism": "domestic", "regimes": {"kz": "domestic"}}
}

# Law 94-V Art 16(1): protected country only when the data lists it.
test_kz_protected_country_from_data if {
	d := decide("ist-lounge", ev("checkin", "contract", ["KZ", "TR"]), {}) with data.data.countries.kz_protected as ["TR"]
	d.allow
	d.transfer.mechanism == "kz_protected_country"
}

test_kz_no_ground_without_data_or_consent if {
	not dgw.kz_mechanism with input as ctx("ist-lounge", ev("checkin", "contract", ["KZ", "TR"]), {})
}

# Art 16(2) ground 2: the treaty entry covers border authorities only.
test_kz_treaty if {
	dgw.kz_mechanism == "kz_treaty" with input as ctx("de-border-pnr", ev("checkin", "border_control", ["KZ", "DE"]), {})
	not dgw.kz_mechanism with input as ctx("cloudnest-it", ev("checkin", "border_control", ["KZ", "DE"]), {})
}

test_kz_treaty_country_list if {
	treaty := [{"countries": ["DE"], "recipient_types": ["it_provider"], "purposes": ["contract"]}]
	dgw.kz_mechanism == "kz_treaty" with input as ctx("cloudnest-it", ev("booking", "contract", ["KZ"]), {})
		with data.data.countries.kz_treaties as treaty
	not dgw.kz_mechanism with input as ctx("cloudnest-it", ev("booking", "research", ["KZ"]), {})
		with data.data.countries.kz_treaties as treaty
}

# Art 16(2) ground 3: a Kazakh law listed in the data.
test_kz_law if {
	law := [{"countries": ["*"], "recipient_types": ["law_firm"], "purposes": ["legal_claim"]}]
	d := decide("legal-partners", ev("booking", "legal_claim", ["KZ"]), {}) with data.data.countries.kz_law_grounds as law
	d.allow
	d.transfer.mechanism == "kz_law"
}

# Art 16(2) ground 1: consent stating the transfer.
test_kz_consent if {
	dgw.kz_mechanism == "kz_consent" with input as ctx("legal-partners", ev("booking", "legal_claim", ["KZ"]), consents(["cross_border"]))
}

test_kz_refusal_reason if {
	d := decide("legal-partners", ev("booking", "legal_claim", ["KZ"]), {})
	not d.allow
	reason_mentions(d, "transfer to GB under Law 94-V Art 16")
	d.transfer.regimes.kz == "none"
}

# GDPR Art 45: adequacy (the UK), DPF-certified US recipients.
test_eu_adequacy if {
	d := decide("legal-partners", object.union(ev("booking", "legal_claim", ["KZ"]), {"point_of_sale": "DE"}), consents(["cross_border"]))
	d.allow
	d.transfer.mechanism == "kz_consent+adequacy"
}

test_eu_dpf if {
	d := decide("fraudshield", object.union(ev("payment", "crime_prevention", []), {"point_of_sale": "DE"}), consents(["cross_border"]))
	d.allow
	d.transfer.mechanism == "kz_consent+dpf"
	d.transfer.regimes == {"kz": "kz_consent", "eu_gdpr": "dpf"}
}

# A US recipient outside the DPF is not covered by the adequacy decision.
test_eu_us_without_dpf if {
	not dgw.eu_adequacy_mechanism with input as object.union(
		ctx("fraudshield", ev("payment", "crime_prevention", []), {"residence": "DE"}),
		{"recipient": {"safeguards": []}},
	)
}

# "commercial" decisions (Canada, Japan) do not cover public authorities.
test_eu_commercial_adequacy if {
	base := ctx("fraudshield", ev("payment", "crime_prevention", []), {"residence": "DE"})
	dgw.eu_adequacy_mechanism == "adequacy" with input as object.union(base, {"recipient": {"country": "JP"}})
	not dgw.eu_adequacy_mechanism with input as object.union(base, {"recipient": {"country": "JP", "type": "border_authority"}})
}

# GDPR Art 46: BCRs before SCCs.
test_eu_safeguards if {
	base := ctx("cloudnest-it", ev("booking", "contract", ["KZ"]), {"residence": "DE"})
	dgw.eu_mechanism == "scc" with input as object.union(base, {"recipient": {"country": "IN"}})
	dgw.eu_mechanism == "bcr" with input as object.union(base, {"recipient": {"country": "IN", "safeguards": ["scc", "bcr"]}})
}

# A recipient inside the EEA is no transfer under the GDPR.
test_eu_domestic_recipient if {
	d := decide("cloudnest-it", ev("booking", "contract", ["KZ", "DE"]), consents(["cross_border"]))
	d.allow
	d.transfer.regimes == {"kz": "kz_consent", "eu_gdpr": "domestic"}
	d.transfer.mechanism == "kz_consent"
}

# GDPR Art 49(1): each derogation fits its purpose.
test_art49_public_interest_border if {
	d := decide("kz-border-api", ev("checkin", "border_control", ["DE", "KZ"]), {})
	d.allow
	d.transfer.mechanism == "art49_public_interest"
}

test_art49_legal_claims if {
	dgw.eu_mechanism == "art49_legal_claims" with input as ctx("claimfix-investigations", ev("booking", "legal_claim", ["KZ", "DE"]), {})
}

test_art49_contract if {
	d := decide("kzpay-processor", object.union(ev("payment", "contract", []), {"point_of_sale": "DE"}), {})
	d.allow
	d.transfer.mechanism == "art49_contract"
}

test_art49_vital_interests if {
	dgw.eu_mechanism == "art49_vital_interests" with input as object.union(
		ctx("cloudnest-it", ev("assistance", "contract", ["KZ", "DE"]), {"residence": "DE", "vital_interest": true}),
		{"recipient": {"country": "IN", "safeguards": []}},
	)
}

test_art49_consent if {
	dgw.eu_mechanism == "art49_consent" with input as object.union(
		ctx("pulse-research", ev("booking", "research", ["KZ"]), object.union({"residence": "DE"}, consents(["cross_border"]))),
		{"recipient": {"country": "IN"}},
	)
}

test_art49_none if {
	d := decide("kzpay-processor", object.union(ev("payment", "research", []), {"point_of_sale": "DE"}), consents(["research"]))
	not d.allow
	reason_mentions(d, "under GDPR Chapter V")
	d.transfer.regimes.eu_gdpr == "none"
}

# GDPR Art 48: third-country police need an international agreement.
test_art48_police if {
	d := decide("kz-police", ev("booking", "crime_prevention", ["KZ", "DE"]), {})
	not d.allow
	reason_mentions(d, "GDPR Art 48")
	ok := decide("kz-police", ev("booking", "crime_prevention", ["KZ", "DE"]), {}) with data.data.countries.gdpr_art48_agreements as ["KZ"]
	ok.allow
	ok.transfer.mechanism == "art49_public_interest"
}

# UK GDPR: EEA and listed countries adequate, DPF only with the UK Extension.
test_uk_adequacy_eea if {
	d := decide("cloudnest-it", object.union(ev("booking", "contract", ["KZ"]), {"point_of_sale": "GB"}), consents(["cross_border"]))
	d.allow
	d.transfer.mechanism == "kz_consent+adequacy"
	d.transfer.regimes.uk_gdpr == "adequacy"
}

test_uk_domestic_recipient if {
	d := decide("legal-partners", ev("booking", "legal_claim", ["KZ", "GB"]), consents(["cross_border"]))
	d.allow
	d.transfer.regimes == {"kz": "kz_consent", "uk_gdpr": "domestic"}
}

test_uk_listed_and_commercial if {
	base := ctx("fraudshield", ev("payment", "crime_prevention", []), {"residence": "GB"})
	dgw.uk_mechanism == "adequacy" with input as object.union(base, {"recipient": {"country": "CH"}})
	dgw.uk_mechanism == "adequacy" with input as object.union(base, {"recipient": {"country": "CA"}})
	not dgw.uk_adequacy_mechanism with input as object.union(base, {"recipient": {"country": "CA", "type": "law_enforcement"}})
}

test_uk_dpf_needs_uk_extension if {
	base := ctx("fraudshield", ev("payment", "crime_prevention", []), {"residence": "GB"})
	not dgw.uk_adequacy_mechanism with input as base
	dgw.uk_mechanism == "dpf_uk" with input as object.union(base, {"recipient": {"safeguards": ["dpf", "dpf_uk"]}})
}

test_uk_safeguards if {
	base := object.union(ctx("cloudnest-it", ev("booking", "contract", ["KZ"]), {"residence": "GB"}), {"recipient": {"country": "IN"}})
	dgw.uk_mechanism == "bcr_uk" with input as object.union(base, {"recipient": {"safeguards": ["bcr_uk", "uk_idta"]}})
	dgw.uk_mechanism == "uk_idta" with input as object.union(base, {"recipient": {"safeguards": ["uk_idta", "uk_addendum"]}})
	dgw.uk_mechanism == "uk_addendum" with input as object.union(base, {"recipient": {"safeguards": ["uk_addendum"]}})
}

test_uk_without_mechanism_refused if {
	d := decide("fraudshield", ev("payment", "crime_prevention", []), object.union({"residence": "GB"}, consents([])))
	not d.allow
	reason_mentions(d, "under UK GDPR Chapter V")
}

test_uk_art49 if {
	d := decide("fraudshield", ev("payment", "crime_prevention", []), object.union({"residence": "GB"}, consents(["cross_border"])))
	d.allow
	d.transfer.mechanism == "kz_consent+art49_consent"
}
