package synth

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
)

// person is one data subject (or a payer, escort, travel manager) with the
// values every event about them repeats.
type person struct {
	id            string // passenger id; "" for someone who does not fly
	seq           int    // creation number, part of ids and e-mail addresses
	given, family string // as printed, canary-marked
	plainGiven    string // for e-mail addresses
	plainFamily   string
	gender        string // booking gender F, M, X or U
	sex           string // document sex F, M or X
	birth         time.Time
	paxType       string // ADT, CHD, INF, UMNR
	title         string
	citizenship   string
	residence     string
	email, phone  string
	home          address
	docType       string
	docNumber     string
	docExpiry     time.Time
	ff            string // frequent-flyer number, "" if not a member
	tier          string
	enrolled      time.Time
	balance       int64
	meal          string
	ssrs          []ssrInfo
	language      string
	employee      *employee
}

type address struct{ line1, city, postal, country string }

type employee struct {
	id, role, jobType, costCenter, email string
	start                                time.Time
}

func (p *person) fullName() string { return p.given + " " + p.family }

// age in whole years at t.
func (p *person) age(t time.Time) int {
	a := t.Year() - p.birth.Year()
	if t.Month() < p.birth.Month() || (t.Month() == p.birth.Month() && t.Day() < p.birth.Day()) {
		a--
	}
	return a
}

func (p *person) ssrCodes() []string {
	out := make([]string, len(p.ssrs))
	for i, s := range p.ssrs {
		out[i] = s.code
	}
	return out
}

// segment is one flight of a journey.
type segment struct {
	from, to airport
	leg      leg
	dep, arr time.Time
}

func (s segment) flightNumber() string { return fmt.Sprintf("%s%d", s.leg.mkt, s.leg.number) }

// trip is one booking (PNR) and everything that happens around it.
type trip struct {
	locator      string
	bookedAt     time.Time
	kind         string
	party        string // solo, couple, family, umnr, corporate
	journeys     [][]segment
	pax          []*person
	payer        *person // who pays when not a passenger, else nil
	channel      string
	agency       string
	corporate    string
	corpDomain   string
	employerPaid bool
	pos          string
	currency     string
	cabin        string
	fareClass    string
	fares        []*big.Rat // per passenger
	seats        [][]string // [passenger][segment index over all journeys]
	bags         [][]int    // [passenger][journey]
}

func (t *trip) segments() []segment {
	var out []segment
	for _, j := range t.journeys {
		out = append(out, j...)
	}
	return out
}

func (t *trip) lead() *person { return t.pax[0] }

func (g *Generator) newTrip(now time.Time) *trip {
	t := &trip{locator: g.code(6), bookedAt: ms(now)}
	t.party = g.choose(choice{"solo", 46}, choice{"couple", 12}, choice{"family", 18}, choice{"umnr", 4}, choice{"corporate", 20})
	r := routes[g.weighted(len(routes), func(i int) int { return routes[i].weight })]
	t.kind = r.kind
	dest := airports[r.path[len(r.path)-1]].country

	// Who travels.
	nat := g.nationality(t.party, r.kind, dest)
	res := g.residence(nat, t.party)
	switch t.party {
	case "solo":
		t.pax = []*person{g.newPerson(nat, res, "ADT", 19, 84, "", t.bookedAt)}
	case "couple":
		a := g.newPerson(nat, res, "ADT", 22, 78, "", t.bookedAt)
		family := ""
		if g.chance(70) {
			family = a.plainFamily
		}
		b := g.newPerson(nat, res, "ADT", 22, 78, opposite(a.sex), t.bookedAt, family)
		t.pax = []*person{a, b}
	case "family":
		a := g.newPerson(nat, res, "ADT", 27, 52, "", t.bookedAt)
		t.pax = []*person{a}
		if g.chance(75) {
			t.pax = append(t.pax, g.newPerson(nat, res, "ADT", 27, 52, opposite(a.sex), t.bookedAt, a.plainFamily))
		}
		for range g.between(1, 3) {
			var kid *person
			switch g.choose(choice{"INF", 20}, choice{"CHD", 55}, choice{"TEEN", 25}) {
			case "INF":
				kid = g.newPerson(nat, res, "INF", 0, 1, "", t.bookedAt, a.plainFamily)
			case "CHD":
				kid = g.newPerson(nat, res, "CHD", 2, 11, "", t.bookedAt, a.plainFamily)
			default:
				kid = g.newPerson(nat, res, "ADT", 12, 16, "", t.bookedAt, a.plainFamily)
			}
			t.pax = append(t.pax, kid)
		}
	case "umnr":
		kid := g.newPerson(nat, res, "UMNR", 5, 14, "", t.bookedAt)
		t.pax = []*person{kid}
		t.payer = g.newPerson(nat, res, "ADT", 30, 55, "", t.bookedAt, kid.plainFamily)
		t.payer.id = ""
	case "corporate":
		n := g.choose(choice{"1", 70}, choice{"2", 20}, choice{"3", 10})
		for i := range int(n[0] - '0') {
			cn, cr := nat, res
			if i > 0 && g.chance(40) {
				cn = g.nationality("corporate", r.kind, dest)
				cr = g.residence(cn, "corporate")
			}
			t.pax = append(t.pax, g.newPerson(cn, cr, "ADT", 23, 63, "", t.bookedAt))
		}
	}
	g.distinctNames(t.pax)
	g.addExtras(t)

	// How it was booked.
	if t.party == "corporate" {
		c := corporates[g.weighted(len(corporates), func(i int) int { return corporates[i].weight })]
		t.corporate, t.corpDomain = c.account, c.domain
		t.employerPaid = g.chance(90)
		t.channel = g.choose(choice{"corporate_tool", 55}, choice{"travel_agency", 45})
		if t.channel == "travel_agency" && g.chance(50) {
			t.agency = "96123456"
		}
		t.payer = g.newPerson(g.choose(choice{"KZ", 4}, choice{"GB", 1}), "KZ", "ADT", 26, 60, "", t.bookedAt)
		t.payer.id = ""
		t.payer.email = fmt.Sprintf("travel.desk.%s@%s.canary.example", asciiLower(t.payer.plainFamily), t.corpDomain)
		for _, p := range t.pax {
			g.employ(p, t)
		}
	} else {
		t.channel = g.choose(choice{"website", 35}, choice{"mobile_app", 25}, choice{"contact_centre", 8},
			choice{"airport_desk", 4}, choice{"travel_agency", 23}, choice{"other_airline", 5})
		if t.party == "umnr" && (t.channel == "website" || t.channel == "mobile_app") {
			t.channel = "contact_centre" // UMNR service is booked by phone
		}
	}
	if t.channel == "travel_agency" && t.agency == "" {
		t.agency = agencies[g.weighted(len(agencies), func(i int) int { return agencies[i].weight })].code
	}

	// Where and in which currency.
	t.pos = t.lead().residence
	for _, a := range agencies {
		if a.code == t.agency {
			t.pos = a.country
		}
	}
	if _, ok := countries[t.pos]; !ok || g.chance(4) {
		t.pos = pick(g, []string{"KZ", "KZ", "DE", "GB", "TR", "AE"})
	}
	t.currency = countries[t.pos].currency
	if _, ok := kztPer[t.currency]; !ok {
		t.currency = "USD"
	}

	// Where to and when.
	path := append([]string(nil), r.path...)
	inbound := false
	switch {
	case r.kind == "domestic":
		inbound = g.chance(50)
	case t.lead().residence == "KZ":
	case t.lead().residence == dest:
		inbound = true
	default:
		inbound = g.chance(50)
	}
	if inbound {
		reverse(path)
	}
	dep := ms(t.bookedAt.Add(time.Duration(g.between(2*24*60, 60*24*60)) * time.Minute))
	out := g.journey(path, dep)
	t.journeys = [][]segment{out}
	if g.chance(either(r.kind == "domestic", 45, 65)) {
		back := append([]string(nil), path...)
		reverse(back)
		last := out[len(out)-1].arr
		t.journeys = append(t.journeys, g.journey(back, ms(last.Add(time.Duration(g.between(2*24*60, 21*24*60))*time.Minute))))
	}

	// Cabin and fare.
	if t.party == "corporate" {
		t.cabin = g.choose(choice{"economy", 50}, choice{"business", 45}, choice{"premium_economy", 5})
	} else {
		t.cabin = g.choose(choice{"economy", 84}, choice{"premium_economy", 4}, choice{"business", 11}, choice{"first", 1})
	}
	t.fareClass = pick(g, map[string][]string{
		"economy": {"Y", "B", "M", "H", "K", "L", "Q", "T", "V"}, "premium_economy": {"W", "E"},
		"business": {"J", "C", "D", "Z"}, "first": {"F", "A"},
	}[t.cabin])
	for _, p := range t.pax {
		t.fares = append(t.fares, g.fare(t, p))
	}

	// Seats (families sit together) and bags.
	nseg := len(t.segments())
	row := make([]int, nseg)
	for s := range row {
		row[s] = g.between(3, 38)
	}
	for i, p := range t.pax {
		seats := make([]string, nseg)
		for s := range seats {
			if p.paxType != "INF" {
				seats[s] = fmt.Sprintf("%d%c", row[s], 'A'+rune(i%6))
			}
		}
		t.seats = append(t.seats, seats)
		bags := make([]int, len(t.journeys))
		for j := range bags {
			if p.paxType != "INF" {
				bags[j] = g.weighted(4, func(i int) int { return []int{35, 50, 12, 3}[i] })
			}
		}
		t.bags = append(t.bags, bags)
	}
	return t
}

// journey lays out the flights of an airport path from dep on.
func (g *Generator) journey(path []string, dep time.Time) []segment {
	var out []segment
	for i := 0; i+1 < len(path); i++ {
		l, ok := flight(path[i], path[i+1])
		if !ok {
			panic("synth: no flight " + path[i] + "-" + path[i+1]) // static tables: a programming error
		}
		s := segment{from: airports[path[i]], to: airports[path[i+1]], leg: l, dep: dep}
		s.arr = dep.Add(time.Duration(l.minutes) * time.Minute)
		out = append(out, s)
		dep = s.arr.Add(g.minutes(80, 240))
	}
	return out
}

func reverse(s []string) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func opposite(sex string) string {
	if sex == "F" {
		return "M"
	}
	return "F"
}

// nationality of a traveller on a route.
func (g *Generator) nationality(party, kind, dest string) string {
	local := kindNationality[kind]
	if kind == "cis" {
		local = dest
	}
	switch {
	case party == "corporate":
		return g.choose(choice{"KZ", 60}, choice{"GB", 10}, choice{"US", 8}, choice{"DE", 8}, choice{"FR", 4},
			choice{"TR", 4}, choice{"CN", 3}, choice{"IN", 3})
	case kind == "domestic":
		if g.chance(80) {
			return "KZ"
		}
		return pick(g, mixNationalities)
	}
	switch r := g.rnd.IntN(100); {
	case r < 60:
		return "KZ"
	case r < 85 && local != "":
		return local
	default:
		return pick(g, mixNationalities)
	}
}

// residence of a citizen of nat: mostly home, sometimes abroad.
func (g *Generator) residence(nat, party string) string {
	if g.chance(85) {
		return nat
	}
	if nat == "KZ" {
		return pick(g, []string{"DE", "GB", "AE", "US", "RU", "TR"})
	}
	if party == "corporate" || g.chance(50) {
		return "KZ"
	}
	return pick(g, []string{"AE", "DE", "GB", "TR"})
}

// newPerson creates a traveller aged lo..hi at booking. sex "" is random;
// family, when given, is the plain family name to share.
func (g *Generator) newPerson(nat, res, paxType string, lo, hi int, sex string, at time.Time, family ...string) *person {
	g.pax++
	ns := names[nat]
	p := &person{
		id:          fmt.Sprintf("PAX-CANARY-%s-%06d", g.tag, g.pax),
		seq:         g.pax,
		paxType:     paxType,
		citizenship: nat,
		residence:   res,
		language:    countries[nat].language,
	}
	p.sex = sex
	if p.sex == "" {
		p.sex = g.choose(choice{"F", 50}, choice{"M", 49}, choice{"X", 1})
	}
	p.gender = p.sex
	if g.chance(1) {
		p.gender = "U"
	}
	if p.sex == "F" || (p.sex == "X" && g.chance(50)) {
		p.plainGiven = pick(g, ns.female)
	} else {
		p.plainGiven = pick(g, ns.male)
	}
	if len(family) > 0 && family[0] != "" {
		p.plainFamily = family[0]
		// Feminine or masculine form of a shared family name.
		base := strings.TrimSuffix(p.plainFamily, "a")
		if ns.feminine(base) != base {
			p.plainFamily = base
			if p.sex == "F" {
				p.plainFamily = ns.feminine(base)
			}
		}
	} else {
		p.plainFamily = pick(g, ns.family)
		if p.sex == "F" {
			p.plainFamily = ns.feminine(p.plainFamily)
		}
	}
	p.given, p.family = p.plainGiven+" Canary", p.plainFamily+"-Canary"

	age := g.between(lo, hi)
	b := date(at).AddDate(-age, 0, -g.between(1, 364))
	p.birth = date(b)

	switch {
	case paxType == "ADT" && p.sex == "M":
		p.title = "MR"
	case paxType == "ADT":
		p.title = pick(g, []string{"MRS", "MS"})
	case p.sex == "M":
		p.title = "MSTR"
	default:
		p.title = "MISS"
	}
	if g.chance(20) {
		p.title = ""
	}
	if paxType == "ADT" && age >= 18 {
		p.email = fmt.Sprintf("%s.%s.%d@canary.example", asciiLower(p.plainGiven), asciiLower(p.plainFamily), p.seq)
		p.phone = g.phone(res)
	}
	c := countries[res]
	home := pick(g, c.cities)
	p.home = address{line1: g.street(res), city: home.name, postal: home.postal, country: res}

	p.docType = "passport"
	p.docNumber = "CNRY" + g.digits(5)
	p.docExpiry = date(at.AddDate(g.between(1, 9), g.between(0, 11), 0))
	return p
}

// distinctNames renames travellers of one booking who got the same name,
// taking the first free given name of their list after a random start.
func (g *Generator) distinctNames(pax []*person) {
	taken := func(i int) bool {
		return slices.ContainsFunc(pax[:i], func(q *person) bool { return q.fullName() == pax[i].fullName() })
	}
	for i, p := range pax {
		if !taken(i) {
			continue
		}
		ns := names[p.citizenship]
		list := ns.male
		if p.sex == "F" {
			list = ns.female
		}
		start := g.rnd.IntN(len(list))
		for k := range list {
			p.plainGiven = list[(start+k)%len(list)]
			p.given = p.plainGiven + " Canary"
			if !taken(i) {
				break
			}
		}
		if p.email != "" {
			p.email = fmt.Sprintf("%s.%s.%d@canary.example", asciiLower(p.plainGiven), asciiLower(p.plainFamily), p.seq)
		}
	}
}

// addExtras gives travellers loyalty membership, special meals and SSRs.
func (g *Generator) addExtras(t *trip) {
	for _, p := range t.pax {
		adult := p.paxType == "ADT" && p.email != ""
		member := (adult && g.chance(either(t.party == "corporate", 70, 40))) ||
			(!adult && p.paxType != "INF" && g.chance(10))
		if member {
			p.ff = "CNRY" + g.digits(9)
			p.tier = g.choose(choice{"basic", 50}, choice{"silver", 25}, choice{"gold", 17}, choice{"platinum", 8})
			years := g.between(0, min(12, max(0, p.age(t.bookedAt)-2)))
			p.enrolled = date(t.bookedAt.AddDate(-years, -g.between(0, 11), -g.between(0, 27)))
			if p.enrolled.Before(p.birth) {
				p.enrolled = p.birth.AddDate(1, 0, 0)
			}
			p.balance = int64(g.between(0, 400)) * 250
		}
		switch p.paxType {
		case "INF":
			if g.chance(50) {
				p.meal = "BBML"
			}
		case "CHD", "UMNR":
			if g.chance(30) {
				p.meal = "CHML"
			}
		default:
			if g.chance(16) {
				p.meal = meals[g.weighted(len(meals), func(i int) int {
					w := meals[i].weight
					for _, n := range meals[i].favour {
						if n == p.citizenship {
							w *= 3
						}
					}
					return w
				})].code
			}
		}
		if p.paxType == "ADT" && p.email != "" {
			old := p.age(t.bookedAt) >= 65
			if g.chance(either(old, 25, 8)) {
				p.ssrs = append(p.ssrs, prmSSRs[g.weighted(len(prmSSRs), func(i int) int { return prmSSRs[i].weight })])
				if g.chance(15) {
					extra := prmSSRs[g.weighted(len(prmSSRs), func(i int) int { return prmSSRs[i].weight })]
					if extra.code != p.ssrs[0].code {
						p.ssrs = append(p.ssrs, extra)
					}
				}
			}
		}
		// Domestic travellers often fly on the national ID card; foreign
		// residents on their residence permit.
		if t.kind == "domestic" && p.citizenship == "KZ" && g.chance(60) {
			p.docType = "id_card"
		} else if t.kind == "domestic" && p.residence == "KZ" && p.citizenship != "KZ" && g.chance(40) {
			p.docType = "residence_permit"
		}
	}
}

// employ gives a corporate traveller an employee record.
func (g *Generator) employ(p *person, t *trip) {
	j := pick(g, jobs)
	e := &employee{
		id:      fmt.Sprintf("EMP-CANARY-%05d", g.rnd.IntN(100000)),
		role:    j.role,
		jobType: j.jobType,
		email:   fmt.Sprintf("%s.%s@%s.canary.example", asciiLower(p.plainGiven), asciiLower(p.plainFamily), t.corpDomain),
		start:   date(t.bookedAt.AddDate(-g.between(0, 15), -g.between(0, 11), -g.between(0, 27))),
	}
	if g.chance(75) {
		e.costCenter = fmt.Sprintf("CC-%04d", g.between(1000, 9999))
	}
	p.employee = e
}

// phone returns a fictional number in a country: the subscriber part
// always starts 7700900 (after Ofcom's drama range), a canary marker.
func (g *Generator) phone(cc string) string {
	return "+" + countries[cc].calling + "7700900" + g.digits(3)
}

// street returns a canary-marked street address line for a country.
func (g *Generator) street(cc string) string {
	n := g.between(1, 180)
	switch cc {
	case "KZ", "RU", "UZ", "KG", "GE":
		return fmt.Sprintf("%d Canary Street, apt %d", n, g.between(1, 240))
	case "DE":
		return fmt.Sprintf("Canarystraße %d", n)
	case "FR":
		return fmt.Sprintf("%d rue du Canary", n)
	case "TR":
		return fmt.Sprintf("Canary Sokak No %d", n)
	case "AE":
		return fmt.Sprintf("Villa %d, Canary Street", n)
	case "CN":
		return fmt.Sprintf("%d Canary Road", n)
	case "IN":
		return fmt.Sprintf("%d Canary Marg", n)
	}
	return fmt.Sprintf("%d Canary Lane", n)
}

// fare is the price of one passenger's ticket in the trip's currency.
func (g *Generator) fare(t *trip, p *person) *big.Rat {
	r := fareRange[t.kind]
	kzt := float64(g.between(r[0], r[1]))
	kzt *= map[string]float64{"economy": 1, "premium_economy": 1.6, "business": 3.2, "first": 5}[t.cabin]
	if len(t.journeys) == 2 {
		kzt *= 1.8
	}
	switch p.paxType {
	case "CHD":
		kzt *= 0.75
	case "INF":
		kzt *= 0.1
	case "UMNR":
		kzt = kzt*0.75 + 25_000
	}
	return money(kzt, t.currency)
}

// money converts tenge to an amount in cur: whole tenge, cents otherwise.
func money(kzt float64, cur string) *big.Rat {
	rate := kztPer[cur]
	if cur == "KZT" {
		return new(big.Rat).SetInt64(int64(kzt))
	}
	return big.NewRat(int64(kzt*100)/rate, 100)
}

// asciiLower folds a name to the letters of an e-mail local part.
func asciiLower(s string) string {
	fold := map[rune]string{'ü': "ue", 'ö': "oe", 'ä': "ae", 'ß': "ss", 'é': "e", 'è': "e", 'ç': "c", 'Ç': "c",
		'ş': "s", 'Ş': "s", 'ı': "i", 'İ': "i", 'ğ': "g", 'Ö': "oe", 'Ü': "ue"}
	var b strings.Builder
	for _, r := range s {
		if f, ok := fold[r]; ok {
			b.WriteString(f)
			continue
		}
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
