package dgw

# Which data-protection laws apply to a disclosure (POLICY-REFERENCE §1, §6).
#
# - Kazakhstan, Law 94-V of 21 May 2013: the airline is a Kazakh controller
#   (§2, §3), so the Kazakh law applies to every disclosure.
# - EU GDPR, Art 3(2)(a): a controller outside the Union is bound when it
#   offers services to people in the Union. We take that to be the case when
#   the ticket was sold in the EEA (point of sale), when the trip touches
#   the EEA (the passenger is in the Union on that trip), or when the
#   passenger lives there (residence). Citizenship alone does not trigger it.
# - UK GDPR, Art 3(2)(a): the same tests for the United Kingdom.
# Several regimes may apply at once; a transfer then needs a mechanism
# under each of them (transfer.rego).

# The country lists (data/countries.json).
countries := data.data.countries

# GDPR Art 3, EEA Agreement: the EU member states, Iceland, Liechtenstein, Norway.
eea := {country | some country in countries.eea}

# UK GDPR Art 3.
uk := {country | some country in countries.uk}

# Event facts: what the policy derives from the event and the passenger
# alone, whoever the recipient. dgw evaluates data.dgw.facts once per event
# and then decides each recipient with data.dgw.facts replaced by that value
# (`with`), so its decision cache keys a decision by these few facts instead
# of the raw trip (README, "Performance"). So the rules that depend on the
# recipient read the trip, the point of sale and the residence only through
# facts; facts must not read input.recipient.
facts := {
	"regimes": trip_regimes,
	"served_countries": served_countries,
	"route_type": type_name(input.event.route),
}

# The regimes that apply (below), as the decision rules see them.
regimes := facts.regimes

# The registry's countries that the trip touches: whether a trip touches a
# country matters only to a recipient there (route_classes in classes.rego,
# the Art 49(1)(d) border authority in transfer.rego), and a recipient whose
# country is not the registry's is refused anyway (registry.rego).
served_countries := route_countries & {entry.country | some entry in data.data.recipients}

# Law 94-V: the controller is established in Kazakhstan.
trip_regimes contains "kz"

# GDPR Art 3(2)(a): ticket sold in the EEA.
trip_regimes contains "eu_gdpr" if input.event.point_of_sale in eea

# GDPR Art 3(2)(a): the trip touches the EEA.
trip_regimes contains "eu_gdpr" if {
	some country in route_countries
	country in eea
}

# GDPR Art 3(2)(a): the passenger lives in the EEA.
trip_regimes contains "eu_gdpr" if input.subject.residence in eea

# UK GDPR Art 3(2)(a): ticket sold in the UK.
trip_regimes contains "uk_gdpr" if input.event.point_of_sale in uk

# UK GDPR Art 3(2)(a): the trip touches the UK.
trip_regimes contains "uk_gdpr" if {
	some country in route_countries
	country in uk
}

# UK GDPR Art 3(2)(a): the passenger lives in the UK.
trip_regimes contains "uk_gdpr" if input.subject.residence in uk

# Regimes in the order the transfer mechanism names them.
regime_order := ["kz", "eu_gdpr", "uk_gdpr"]
