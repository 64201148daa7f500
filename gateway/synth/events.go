package synth

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Purposes per event type and weight. Every purpose of the schemas occurs.
var purposes = map[string][]choice{
	"booking": {{"contract", 86}, {"legal_obligation", 4}, {"crime_prevention", 2}, {"research", 3},
		{"advertising", 2}, {"campaign", 2}, {"survey", 1}},
	"checkin": {{"border_control", 75}, {"contract", 15}, {"legal_obligation", 5}, {"crime_prevention", 3}, {"service", 2}},
	"checkin_domestic": {{"contract", 80}, {"service", 10}, {"border_control", 4}, {"legal_obligation", 3},
		{"crime_prevention", 3}},
	"payment":    {{"contract", 84}, {"crime_prevention", 9}, {"legal_claim", 3}, {"legal_obligation", 2}, {"research", 2}},
	"baggage":    {{"baggage", 80}, {"legal_claim", 12}, {"service", 5}, {"survey", 3}},
	"assistance": {{"service", 85}, {"contract", 10}, {"research", 3}, {"survey", 2}},
	"loyalty": {{"contract", 35}, {"service", 25}, {"survey", 12}, {"campaign", 12}, {"advertising", 10},
		{"research", 6}},
	"corporate": {{"contract", 80}, {"service", 12}, {"legal_obligation", 4}, {"legal_claim", 2}, {"research", 2}},
	"websession": {{"service", 45}, {"contract", 20}, {"advertising", 12}, {"research", 8}, {"campaign", 8},
		{"survey", 7}},
}

func (g *Generator) purpose(kind string) string { return g.choose(purposes[kind]...) }

// envelope returns the fields every event starts with. event_id is set
// when the event is emitted.
func envelope(source, purpose, pos string, at time.Time, pid string) map[string]any {
	v := make(map[string]any, 24) // the widest schema has 21 top-level fields
	v["event_id"] = ""
	v["occurred_at"] = ms(at)
	v["source_system"] = source
	v["purpose"] = purpose
	v["point_of_sale"] = pos
	v["passenger_id"] = pid
	return v
}

// play turns a trip into its events, in the order they happen.
func (g *Generator) play(t *trip) []Event {
	var evs []Event
	add := func(typ string, p *person, v map[string]any) {
		evs = append(evs, Event{Type: typ, Key: p.id, Value: v})
	}
	lead := t.lead()
	online := t.channel == "website" || t.channel == "mobile_app"
	segs := t.segments()

	// A web or app session ends in the booking.
	if online && lead.email != "" {
		add("websession", lead, g.websession(t, lead, t.bookedAt.Add(-g.minutes(4, 40)), true))
	}
	tickets := make([]string, len(t.pax))
	for i := range t.pax {
		tickets[i] = g.ticket()
	}
	for i, p := range t.pax {
		ticket := ""
		if g.chance(70) {
			ticket = tickets[i]
		}
		add("booking", p, g.booking(t, i, t.bookedAt.Add(time.Duration(i)*time.Second), ticket, false))
	}
	if t.party == "corporate" {
		for i, p := range t.pax {
			add("corporate", p, g.corporate(t, i, t.bookedAt.Add(g.minutes(1, 5)), false))
		}
	}

	// Payment: one for the booking, by the lead passenger (or for the
	// unaccompanied minor), sometimes an ancillary or a refund later.
	paid := t.bookedAt.Add(g.minutes(1, 12))
	total := new(big.Rat)
	for _, f := range t.fares {
		total.Add(total, f)
	}
	add("payment", lead, g.payment(t, lead, paid, total))
	if g.chance(10) {
		p := pick(g, t.pax)
		extra := money(float64(g.between(4, 40))*1000, t.currency)
		add("payment", p, g.payment(t, p, paid.Add(time.Duration(g.between(1, 72))*time.Hour), extra))
	}
	if g.chance(3) {
		// Half the first fare back, in whole cents, as a negative amount.
		cents := new(big.Int).Quo(new(big.Int).Mul(t.fares[0].Num(), big.NewInt(50)), t.fares[0].Denom())
		refund := new(big.Rat).SetFrac(cents.Neg(cents), big.NewInt(100))
		add("payment", lead, g.payment(t, lead, paid.Add(time.Duration(g.between(24, 240))*time.Hour), refund))
	}

	// Ticketing and seat changes.
	for i, p := range t.pax {
		if g.chance(15) {
			add("booking", p, g.booking(t, i, t.bookedAt.Add(time.Duration(g.between(2, 96))*time.Hour), tickets[i], true))
		}
	}

	// Assistance requests go to the airports well before departure.
	for i, p := range t.pax {
		if len(p.ssrs) == 0 && p.paxType != "UMNR" {
			continue
		}
		for k, s := range segs {
			add("assistance", p, g.assistance(t, i, k, s, t.bookedAt.Add(g.minutes(30, 36*60))))
		}
	}

	// Each journey: check-in, then baggage claims and loyalty accrual.
	k0 := 0
	for j, journey := range t.journeys {
		if j > 0 && !g.chance(80) {
			k0 += len(journey)
			continue
		}
		tags := make([][]string, len(t.pax))
		for i := range t.pax {
			for range t.bags[i][j] {
				tags[i] = append(tags[i], "0465"+g.digits(6))
			}
		}
		noShow := make([]bool, len(t.pax))
		for i, p := range t.pax {
			channel := g.choose(choice{"web", 40}, choice{"mobile_app", 30}, choice{"kiosk", 10}, choice{"airport_desk", 20})
			if len(p.ssrs) > 0 || p.paxType == "UMNR" {
				channel = "airport_desk"
			} else if p.paxType != "ADT" {
				channel = g.choose(choice{"web", 50}, choice{"airport_desk", 50})
			}
			for k, s := range journey {
				before := g.minutes(60, 24*60)
				if channel == "kiosk" || channel == "airport_desk" {
					before = g.minutes(45, 180)
				}
				v := g.checkin(t, i, k0+k, s, s.dep.Add(-before), channel, tags[i])
				if k == 0 && v["boarding_status"] == "no_show" {
					noShow[i] = true
				}
				add("checkin", p, v)
			}
		}
		last := journey[len(journey)-1]
		for i, p := range t.pax {
			if noShow[i] || len(tags[i]) == 0 || !g.chance(10) {
				continue
			}
			add("baggage", p, g.baggage(t, p, last, tags[i], last.arr.Add(g.minutes(20, 180))))
		}
		for _, p := range t.pax {
			if p.ff != "" && !noShow[slices.Index(t.pax, p)] && g.chance(80) {
				add("loyalty", p, g.loyalty(t, p, journey, last.arr.Add(time.Duration(g.between(24, 96))*time.Hour), "accrual"))
			}
		}
		k0 += len(journey)
	}

	// Duty of care: the employer hears about incidents on its trips.
	if t.party == "corporate" {
		for i, p := range t.pax {
			if g.chance(15) {
				add("corporate", p, g.corporate(t, i, segs[0].dep.Add(g.minutes(10, 300)), true))
			}
		}
	}

	// Afterwards: loyalty account activity and another web session.
	after := len(evs)
	for _, p := range t.pax {
		if p.ff != "" && g.chance(30) {
			kind := g.choose(choice{"profile_update", 35}, choice{"redemption", 20}, choice{"tier_change", 15}, choice{"partner_accrual", 30})
			add("loyalty", p, g.loyalty(t, p, nil, segs[len(segs)-1].arr.Add(time.Duration(g.between(24, 30*24))*time.Hour), kind))
		}
	}
	if lead.email != "" && g.chance(20) {
		add("websession", lead, g.websession(t, lead, segs[0].dep.Add(-time.Duration(g.between(2, 40))*time.Hour), false))
	}
	return g.withRequests(t, evs, after)
}

// ticket is a 13-digit ticket number of the airline (prefix 465).
func (g *Generator) ticket() string {
	for {
		if t := "465" + g.digits(10); !ContainsCanary([]byte(t)) {
			return t
		}
	}
}

func (g *Generator) booking(t *trip, i int, at time.Time, ticket string, update bool) map[string]any {
	p := t.pax[i]
	source := "pss-reservations"
	switch t.channel {
	case "travel_agency":
		source = "gds-amadeus"
	case "corporate_tool":
		source = "corporate-booking-tool"
	}
	v := envelope(source, g.purpose("booking"), t.pos, at, p.id)
	v["booking_channel"] = t.channel
	v["agency_code"] = nilIfEmpty(t.agency)
	v["corporate_account"] = nilIfEmpty(t.corporate)
	v["employer_paid"] = t.employerPaid
	v["record_locator"] = t.locator
	v["booked_at"] = t.bookedAt
	v["passenger"] = map[string]any{
		"title":             nilIfEmpty(p.title),
		"given_name":        p.given,
		"family_name":       p.family,
		"gender":            p.gender,
		"birth_date":        p.birth,
		"passenger_type":    p.paxType,
		"citizenship":       p.citizenship,
		"residence_country": p.residence,
	}
	v["contact"] = g.contact(t, p)

	var segs []any
	for k, s := range t.segments() {
		seat := any(nil)
		if t.seats[i][k] != "" && (update || g.chance(30)) {
			seat = t.seats[i][k]
		}
		status := g.choose(choice{"HK", 90}, choice{"TK", 5}, choice{"HL", 5})
		if update {
			status = g.choose(choice{"HK", 90}, choice{"TK", 10})
		}
		segs = append(segs, map[string]any{
			"marketing_carrier": s.leg.mkt,
			"operating_carrier": s.leg.op,
			"flight_number":     s.flightNumber(),
			"departure_airport": s.from.code,
			"departure_country": s.from.country,
			"arrival_airport":   s.to.code,
			"arrival_country":   s.to.country,
			"departure_time":    s.dep,
			"cabin":             t.cabin,
			"fare_class":        t.fareClass,
			"seat":              seat,
			"status":            status,
		})
	}
	v["itinerary"] = map[string]any{"segments": segs}
	v["ticket_number"] = nilIfEmpty(ticket)
	v["frequent_flyer_number"] = nilIfEmpty(p.ff)
	v["meal_code"] = nilIfEmpty(p.meal)

	ssrs := []any{}
	for _, s := range p.ssrs {
		text := any(nil)
		if g.chance(50) {
			if s.aid {
				text = g.note("Travels with own " + pick(g, mobilityAids).kind)
			} else {
				text = g.note(s.code + " assistance at both ends")
			}
		}
		ssrs = append(ssrs, map[string]any{"code": s.code, "free_text": text})
	}
	switch p.paxType {
	case "UMNR":
		guardian := g.newPerson(p.citizenship, p.residence, "ADT", 28, 70, "", at)
		ssrs = append(ssrs, map[string]any{"code": "UMNR", "free_text": g.note(fmt.Sprintf("UMNR age %d, met on arrival by %s, phone %s",
			p.age(at), guardian.fullName(), guardian.phone))})
	case "CHD":
		ssrs = append(ssrs, map[string]any{"code": "CHLD", "free_text": nil})
	}
	if p.paxType == "ADT" && i == 0 {
		for _, c := range t.pax {
			if c.paxType == "INF" {
				ssrs = append(ssrs, map[string]any{"code": "INFT", "free_text": g.note(fmt.Sprintf("%s/%s %s", c.family, c.given, c.birth.Format("02Jan06")))})
			}
		}
	}
	v["special_service_requests"] = ssrs

	companions := []any{}
	for _, c := range t.pax {
		if c != p {
			companions = append(companions, c.fullName())
		}
	}
	v["companions"] = companions
	v["fare"] = map[string]any{"amount": t.fares[i], "currency": t.currency}
	return v
}

// contact is a passenger's PNR contact; children carry a parent's.
func (g *Generator) contact(t *trip, p *person) any {
	src := p
	if p.email == "" {
		src = t.lead()
		if t.payer != nil && t.party == "umnr" {
			src = t.payer
		}
		if src.email == "" || !g.chance(60) {
			return nil
		}
	}
	c := map[string]any{"email": nil, "phone": nil, "address": nil}
	if g.chance(90) {
		c["email"] = src.email
	}
	if g.chance(70) {
		c["phone"] = src.phone
	}
	if g.chance(50) {
		c["address"] = map[string]any{"line1": src.home.line1, "city": src.home.city,
			"postal_code": nilIfEmpty(src.home.postal), "country": src.home.country}
	}
	return c
}

func flightRecord(s segment, withArrival bool) map[string]any {
	f := map[string]any{
		"carrier":             s.leg.op,
		"flight_number":       fmt.Sprintf("%s%d", s.leg.op, s.leg.number),
		"departure_airport":   s.from.code,
		"departure_country":   s.from.country,
		"arrival_airport":     s.to.code,
		"arrival_country":     s.to.country,
		"scheduled_departure": s.dep,
	}
	if withArrival {
		f["scheduled_arrival"] = s.arr
	}
	return f
}

// visaFor returns the visa type a citizen needs to enter dest, or "".
func visaFor(cit, dest string) string {
	free := func(cs ...string) bool { return slices.Contains(cs, cit) }
	switch {
	case cit == dest:
		return ""
	case (dest == "DE" || dest == "FR") && !free("DE", "FR", "GB", "US"):
		return "C"
	case dest == "GB" && !free("DE", "FR", "US"):
		return "Standard Visitor"
	case dest == "US" && !free("DE", "FR", "GB"):
		return "B1/B2"
	case dest == "IN" || (dest == "KZ" && cit == "IN"):
		return "e-Visa"
	case dest == "CN" && free("IN"):
		return "L"
	case dest == "RU" && free("DE", "FR", "GB", "US"):
		return "Tourist"
	}
	return ""
}

func (g *Generator) checkin(t *trip, i, k int, s segment, at time.Time, channel string, tags []string) map[string]any {
	p := t.pax[i]
	intl := s.from.country != s.to.country
	kind := "checkin"
	if !intl {
		kind = "checkin_domestic"
	}
	v := envelope("dcs-checkin", g.purpose(kind), t.pos, at, p.id)
	v["record_locator"] = t.locator
	v["check_in_channel"] = channel
	v["flight"] = flightRecord(s, true)
	v["passenger"] = map[string]any{
		"given_names":       p.given,
		"family_name":       p.family,
		"sex":               p.sex,
		"birth_date":        p.birth,
		"nationality":       p.citizenship,
		"residence_country": p.residence,
		"passenger_type":    p.paxType,
	}
	doc := p.docType
	if intl && doc == "id_card" {
		doc = "passport"
	}
	v["document"] = map[string]any{"type": doc, "number": p.docNumber, "issuing_country": p.citizenship, "expiry_date": p.docExpiry}
	v["visa"] = nil
	if vt := visaFor(p.citizenship, s.to.country); vt != "" && intl {
		v["visa"] = map[string]any{"number": "CNRY" + g.digits(8), "type": vt, "issuing_country": s.to.country,
			"expiry_date": date(s.dep.AddDate(0, g.between(1, 12), 0))}
	}
	v["destination_address"] = nil
	if intl && s.to.country != p.residence && (s.to.country == "US" || g.chance(50)) {
		v["destination_address"] = map[string]any{"line1": g.street(s.to.country), "city": s.to.city, "country": s.to.country}
	}
	phone := p.phone
	if phone == "" && t.lead().phone != "" && g.chance(50) {
		phone = t.lead().phone
	}
	if !g.chance(60) {
		phone = ""
	}
	v["contact_phone"] = nilIfEmpty(phone)
	v["seat"] = nilIfEmpty(t.seats[i][k])
	v["checked_bags"] = len(tags)
	v["bag_tags"] = anys(tags)
	v["boarding_status"] = g.choose(choice{"checked_in", 80}, choice{"boarded", 15}, choice{"offloaded", 3}, choice{"no_show", 2})
	v["meal_code"] = nilIfEmpty(p.meal)
	codes := p.ssrCodes()
	switch {
	case p.paxType == "UMNR":
		codes = append(codes, "UMNR")
	case p.paxType == "CHD":
		codes = append(codes, "CHLD")
	}
	if i == 0 && slices.ContainsFunc(t.pax, func(c *person) bool { return c.paxType == "INF" }) {
		codes = append(codes, "INFT")
	}
	if intl {
		codes = append(codes, "DOCS")
		if v["destination_address"] != nil {
			codes = append(codes, "DOCA")
		}
		if v["visa"] != nil {
			codes = append(codes, "DOCO")
		}
	}
	v["ssr_codes"] = anys(codes)
	return v
}

func (g *Generator) payment(t *trip, p *person, at time.Time, amount *big.Rat) map[string]any {
	v := envelope("payment-gateway", g.purpose("payment"), t.pos, at, p.id)
	v["booking_channel"] = t.channel
	v["agency_code"] = nilIfEmpty(t.agency)
	v["corporate_account"] = nilIfEmpty(t.corporate)
	v["employer_paid"] = t.employerPaid
	v["record_locator"] = t.locator
	v["passenger_birth_date"] = nil
	if g.chance(60) {
		v["passenger_birth_date"] = p.birth
	}
	v["payment_id"] = "PAY-" + g.code(12)
	v["amount"] = amount
	v["currency"] = t.currency

	payer := p
	if t.payer != nil && (t.party == "umnr" || (t.employerPaid && g.chance(60))) {
		payer = t.payer
	} else if p.email == "" {
		payer = t.lead()
		if payer.email == "" && t.payer != nil {
			payer = t.payer
		}
	} else if g.chance(12) {
		payer = g.newPerson(p.residence, p.residence, "ADT", 25, 70, "", at)
		payer.id = ""
	}
	var method string
	switch {
	case t.employerPaid:
		method = g.choose(choice{"invoice", 50}, choice{"card", 50})
	case t.channel == "travel_agency":
		method = g.choose(choice{"invoice", 40}, choice{"card", 50}, choice{"bank_transfer", 10})
	case p.ff != "" && g.chance(15):
		method = "miles"
	default:
		method = g.choose(choice{"card", 78}, choice{"wallet", 10}, choice{"bank_transfer", 5}, choice{"voucher", 7})
	}
	v["method"] = method
	v["card"], v["billing_address"], v["authorisation_code"] = nil, nil, nil
	if method == "card" {
		c := pick(g, testCards)
		cvv := any(nil)
		if g.chance(85) {
			cvv = g.digits(c.cvvLen)
		}
		bank := any(nil)
		if bs, ok := banks[payer.residence]; ok && g.chance(80) {
			bank = pick(g, bs)
		}
		v["card"] = map[string]any{
			"holder_name":   strings.ToUpper(payer.fullName()),
			"number":        c.pan,
			"expiry":        fmt.Sprintf("%02d/%02d", g.between(1, 12), (at.Year()+g.between(1, 5))%100),
			"security_code": cvv,
			"brand":         c.brand,
			"issuing_bank":  bank,
		}
		if g.chance(70) {
			v["billing_address"] = map[string]any{"line1": payer.home.line1, "city": payer.home.city,
				"postal_code": nilIfEmpty(payer.home.postal), "country": payer.home.country}
		}
	}
	if method == "card" || method == "wallet" {
		v["authorisation_code"] = g.code(6)
	}
	name := any(nil)
	if payer != p || g.chance(50) {
		name = payer.fullName()
	}
	v["payer"] = map[string]any{"is_passenger": payer == p || slices.Contains(t.pax, payer), "name": name, "email": nilIfEmpty(payer.email)}
	risk := map[string]any{"ip_address": nil, "device_id": nil, "email_age_days": nil}
	if t.channel == "website" || t.channel == "mobile_app" || g.chance(30) {
		risk["ip_address"] = g.ip()
	}
	if t.channel == "mobile_app" || g.chance(20) {
		risk["device_id"] = g.deviceID()
	}
	if payer.email != "" && g.chance(70) {
		risk["email_age_days"] = g.between(1, 4000)
	}
	v["risk"] = risk
	return v
}

func (g *Generator) baggage(t *trip, p *person, s segment, tags []string, at time.Time) map[string]any {
	v := envelope("worldtracer", g.purpose("baggage"), t.pos, at, p.id)
	v["record_locator"] = t.locator
	v["passenger_birth_date"] = nil
	if g.chance(50) {
		v["passenger_birth_date"] = p.birth
	}
	v["citizenship"] = nil
	if g.chance(70) {
		v["citizenship"] = p.citizenship
	}
	claimant := p
	if p.email == "" { // a parent claims for a child
		claimant = t.lead()
	}
	delivery := any(nil)
	if g.chance(70) {
		a := map[string]any{"line1": claimant.home.line1, "city": claimant.home.city,
			"postal_code": nilIfEmpty(claimant.home.postal), "country": claimant.home.country}
		if s.to.country != claimant.residence {
			a = map[string]any{"line1": g.street(s.to.country), "city": s.to.city, "postal_code": nil, "country": s.to.country}
		}
		delivery = a
	}
	v["claimant"] = map[string]any{
		"given_name":       claimant.given,
		"family_name":      claimant.family,
		"email":            nilIfEmpty(claimant.email),
		"phone":            nilIfEmpty(claimant.phone),
		"delivery_address": delivery,
	}
	v["flight"] = flightRecord(s, false)
	kind := g.choose(choice{"delayed", 60}, choice{"damaged", 25}, choice{"lost", 10}, choice{"pilfered", 5})
	contents := []string{}
	for range g.between(0, 3) {
		contents = append(contents, g.note(pick(g, bagContents)))
	}
	statement := any(nil)
	if g.chance(70) {
		statement = g.note(pick(g, statements))
	}
	amount, currency := any(nil), any(nil)
	if kind != "delayed" || g.chance(20) {
		amount, currency = money(float64(g.between(20, 900))*1000, t.currency), t.currency
	}
	v["claim"] = map[string]any{
		"reference":       fmt.Sprintf("%s%s%s", s.to.code, s.leg.op, g.digits(5)),
		"kind":            kind,
		"bag_tags":        anys(tags),
		"bag_description": g.note(pick(g, bagDescriptions)),
		"contents":        anys(contents),
		"statement":       statement,
		"amount_claimed":  amount,
		"currency":        currency,
		"filed_at":        ms(at.Add(-g.minutes(5, 15))),
	}
	return v
}

func (g *Generator) assistance(t *trip, i, k int, s segment, at time.Time) map[string]any {
	p := t.pax[i]
	v := envelope("prm-desk", g.purpose("assistance"), t.pos, at, p.id)
	v["record_locator"] = t.locator
	lang := any(nil)
	if g.chance(60) {
		lang = p.language
	}
	v["passenger"] = map[string]any{
		"given_name":  p.given,
		"family_name": p.family,
		"birth_date":  p.birth,
		"citizenship": p.citizenship,
		"language":    lang,
	}
	v["flight"] = flightRecord(s, false)
	v["seat"] = nilIfEmpty(t.seats[i][k])
	codes := p.ssrCodes()
	if p.paxType == "UMNR" {
		codes = append(codes, "UMNR")
	}
	v["ssr_codes"] = anys(codes)
	v["mobility_aid"], v["medical"], v["escort"] = nil, nil, nil
	needsEscort := p.paxType == "UMNR"
	for _, s := range p.ssrs {
		if s.aid && v["mobility_aid"] == nil {
			a := pick(g, mobilityAids)
			w := any(nil)
			if g.chance(70) {
				w = a.weight
			}
			v["mobility_aid"] = map[string]any{"kind": a.kind, "battery": a.battery, "weight_kg": w}
		}
		if s.medical && v["medical"] == nil {
			oxygen := any(nil)
			if s.code == "OXYG" || g.chance(10) {
				oxygen = g.between(1, 4)
			}
			physician := any(nil)
			if g.chance(60) {
				physician = g.phone(p.residence)
			}
			v["medical"] = map[string]any{
				"medif_required":           s.code != "MAAS",
				"condition":                g.note(pick(g, conditions)),
				"oxygen_litres_per_minute": oxygen,
				"physician_contact":        physician,
			}
		}
		needsEscort = needsEscort || s.escort
	}
	if needsEscort && g.chance(70) {
		escort := g.newPerson(p.citizenship, p.residence, "ADT", 20, 60, "", at)
		v["escort"] = escort.fullName()
	}
	v["explicit_consent"] = g.chance(80)
	return v
}

func (g *Generator) loyalty(t *trip, p *person, journey []segment, at time.Time, kind string) map[string]any {
	purpose := g.purpose("loyalty")
	v := envelope("loyalty-nomad-club", purpose, t.pos, at, p.id)
	prefs := []string{}
	if g.chance(60) {
		prefs = append(prefs, "seat:"+pick(g, []string{"aisle", "window", "front"}))
	}
	if p.meal != "" {
		prefs = append(prefs, "meal:"+p.meal)
	}
	if g.chance(30) {
		prefs = append(prefs, "newsletter:"+p.language)
	}
	cit := any(nil)
	if g.chance(60) {
		cit = p.citizenship
	}
	v["member"] = map[string]any{
		"number":            p.ff,
		"tier":              p.tier,
		"given_name":        p.given,
		"family_name":       p.family,
		"birth_date":        p.birth,
		"email":             nilIfEmpty(p.email),
		"phone":             nilIfEmpty(p.phone),
		"residence_country": p.residence,
		"citizenship":       cit,
		"enrolled_on":       p.enrolled,
		"preferences":       anys(prefs),
	}
	points := int64(0)
	act := map[string]any{"kind": kind, "partner": nil, "flight_number": nil, "departure_country": nil, "arrival_country": nil}
	switch kind {
	case "accrual":
		for _, s := range journey {
			points += int64(s.leg.minutes) * 8
		}
		act["flight_number"] = journey[0].flightNumber()
		act["departure_country"] = journey[0].from.country
		act["arrival_country"] = journey[len(journey)-1].to.country
	case "partner_accrual":
		points = int64(g.between(2, 40)) * 100
		act["partner"] = pick(g, []string{"Hertz", "Marriott Bonvoy", "Halyk Bank co-brand card", "Lufthansa Miles & More"})
	case "redemption":
		points = -int64(g.between(5, 60)) * 1000
		if -points > p.balance {
			points = -p.balance
		}
	case "tier_change":
		p.tier = map[string]string{"basic": "silver", "silver": "gold", "gold": "platinum", "platinum": "gold"}[p.tier]
		v["member"].(map[string]any)["tier"] = p.tier
	}
	p.balance += points
	act["points"] = points
	act["balance"] = p.balance
	v["activity"] = act
	social := []string{}
	if g.chance(25) {
		for range g.between(1, 3) {
			social = append(social, g.note(pick(g, interests)))
		}
	}
	v["interests"] = anys(social)
	answers := []any{}
	if purpose == "survey" || g.chance(10) {
		for range g.between(1, 3) {
			q := pick(g, surveyQuestions)
			answers = append(answers, map[string]any{"question": q.q, "answer": g.note(pick(g, q.answers))})
		}
	}
	v["survey_answers"] = answers
	return v
}

func (g *Generator) corporate(t *trip, i int, at time.Time, incident bool) map[string]any {
	p := t.pax[i]
	v := envelope("corporate-sales", g.purpose("corporate"), t.pos, at, p.id)
	v["booking_channel"] = t.channel
	v["agency_code"] = nilIfEmpty(t.agency)
	v["corporate_account"] = t.corporate
	v["employer_paid"] = t.employerPaid
	v["record_locator"] = t.locator
	e := p.employee
	birth, cit := any(nil), any(nil)
	if g.chance(70) {
		birth = p.birth
	}
	if g.chance(80) {
		cit = p.citizenship
	}
	v["employee"] = map[string]any{
		"employee_id": e.id,
		"given_name":  p.given,
		"family_name": p.family,
		"birth_date":  birth,
		"citizenship": cit,
		"role":        e.role,
		"job_type":    e.jobType,
		"start_date":  e.start,
		"cost_center": nilIfEmpty(e.costCenter),
		"work_email":  nilIfEmpty(e.email),
	}
	var segs []any
	for _, s := range t.segments() {
		segs = append(segs, map[string]any{
			"flight_number":     s.flightNumber(),
			"departure_airport": s.from.code,
			"departure_country": s.from.country,
			"arrival_airport":   s.to.code,
			"arrival_country":   s.to.country,
			"departure_time":    s.dep,
			"cabin":             t.cabin,
		})
	}
	v["segments"] = segs
	v["fare"] = map[string]any{"amount": t.fares[i], "currency": t.currency}
	v["incident"] = nil
	if incident {
		kind := g.choose(choice{"delay", 40}, choice{"cancellation", 20}, choice{"diversion", 10}, choice{"injury", 20}, choice{"security", 10})
		details := any(nil)
		if kind == "injury" {
			details = g.note(pick(g, injuryDetails))
		}
		v["incident"] = map[string]any{
			"kind":            kind,
			"reported_at":     ms(at.Add(g.minutes(5, 120))),
			"summary":         g.note(pick(g, incidentSummaries[kind])),
			"medical_details": details,
		}
	}
	v["meal_code"] = nilIfEmpty(p.meal)
	return v
}

func (g *Generator) websession(t *trip, p *person, at time.Time, booking bool) map[string]any {
	v := envelope("web-analytics", g.purpose("websession"), t.pos, at, p.id)
	ua := pick(g, userAgents)
	app := t.channel == "mobile_app"
	v["session_id"] = fmt.Sprintf("sess-canary-%012x", g.rnd.Uint64()>>16)
	v["ip_address"] = g.ip()
	v["mac_address"] = nil
	if app && g.chance(30) {
		v["mac_address"] = fmt.Sprintf("00:00:5e:00:53:%02x", g.rnd.IntN(256))
	}
	v["user_agent"] = ua.ua
	v["operating_system"] = ua.os
	v["device_id"] = nil
	if app || g.chance(25) {
		v["device_id"] = g.deviceID()
	}
	analytics, marketing := g.chance(60), g.chance(40)
	v["location"] = nil
	if analytics && g.chance(40) {
		c := pick(g, countries[p.residence].cities)
		lat, lon := cityCoordinates(c.name)
		v["location"] = map[string]any{"latitude": lat + float64(g.between(-500, 500))/10000,
			"longitude": lon + float64(g.between(-500, 500))/10000, "country": p.residence}
	}
	v["referrer"] = nilIfEmpty(g.choose(choice{"", 40}, choice{"https://www.google.com/", 30},
		choice{"https://www.skyscanner.net/", 15}, choice{"https://mail.example/newsletter", 10}, choice{"https://instagram.com/", 5}))
	out := t.journeys[0]
	from, to := out[0].from.code, out[len(out)-1].to.code
	const site = "https://www.airline.example"
	pages := []any{}
	viewed := at
	paths := []string{"/en/", fmt.Sprintf("/en/booking/select?from=%s&to=%s", from, to), "/en/booking/passengers", "/en/booking/payment", "/en/booking/confirmation"}
	if !booking {
		paths = []string{"/en/", "/en/manage-booking", "/en/check-in", "/en/loyalty/miles"}
	}
	for _, path := range paths[:g.between(2, len(paths))] {
		d := int64(g.between(3, 240)) * 1000
		pages = append(pages, map[string]any{"url": site + path, "viewed_at": ms(viewed), "duration_ms": d})
		viewed = viewed.Add(time.Duration(d) * time.Millisecond)
	}
	v["pages"] = pages
	searches := []string{}
	if booking {
		searches = append(searches, fmt.Sprintf("%s-%s %s", from, to, out[0].dep.Format(time.DateOnly)))
		if g.chance(30) {
			searches = append(searches, fmt.Sprintf("%s-%s %s", from, to, out[0].dep.AddDate(0, 0, 1).Format(time.DateOnly)))
		}
	}
	v["searches"] = anys(searches)
	v["banner_clicks"] = g.weighted(4, func(i int) int { return []int{70, 20, 7, 3}[i] })
	given := any(nil)
	if g.chance(85) {
		given = ms(at.Add(-time.Duration(g.between(0, 390*24)) * time.Hour))
	}
	v["cookie_consent"] = map[string]any{"analytics": analytics, "marketing": marketing, "given_at": given}
	return v
}

func cityCoordinates(name string) (float64, float64) {
	switch name {
	case "Almaty":
		return 43.2389, 76.8897
	case "Astana":
		return 51.1605, 71.4704
	case "London":
		return 51.5072, -0.1276
	case "Berlin":
		return 52.5200, 13.4050
	case "Dubai":
		return 25.2048, 55.2708
	case "Istanbul":
		return 41.0082, 28.9784
	}
	return 40 + float64(len(name)%10), 30 + float64(len(name)%40)
}

// ip returns an address from the documentation ranges (RFC 5737, RFC 3849).
func (g *Generator) ip() string {
	if g.chance(15) {
		return fmt.Sprintf("2001:db8:%x:%x::%x", g.rnd.IntN(0x10000), g.rnd.IntN(0x10000), g.rnd.IntN(0x10000))
	}
	return fmt.Sprintf("%s%d", pick(g, []string{"192.0.2.", "198.51.100.", "203.0.113."}), g.between(1, 254))
}

func (g *Generator) deviceID() string {
	return fmt.Sprintf("canary-%08x-%04x-%04x", g.rnd.Uint32(), g.rnd.IntN(0x10000), g.rnd.IntN(0x10000))
}
