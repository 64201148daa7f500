package synth

import "strings"

// This file holds the static world the generator draws from: airports,
// flights, routes, countries, names, meal and SSR codes. Every table is
// read-only.

type airport struct {
	code, country, city string
}

var airports = map[string]airport{
	// Kazakhstan.
	"ALA": {"ALA", "KZ", "Almaty"},
	"NQZ": {"NQZ", "KZ", "Astana"},
	"CIT": {"CIT", "KZ", "Shymkent"},
	"SCO": {"SCO", "KZ", "Aktau"},
	"GUW": {"GUW", "KZ", "Atyrau"},
	"AKX": {"AKX", "KZ", "Aktobe"},
	"KGF": {"KGF", "KZ", "Karaganda"},
	"UKK": {"UKK", "KZ", "Oskemen"},
	"PWQ": {"PWQ", "KZ", "Pavlodar"},
	"KZO": {"KZO", "KZ", "Kyzylorda"},
	"URA": {"URA", "KZ", "Oral"},
	"PLX": {"PLX", "KZ", "Semey"},
	// Abroad.
	"FRA": {"FRA", "DE", "Frankfurt am Main"},
	"MUC": {"MUC", "DE", "Munich"},
	"LHR": {"LHR", "GB", "London"},
	"CDG": {"CDG", "FR", "Paris"},
	"IST": {"IST", "TR", "Istanbul"},
	"AYT": {"AYT", "TR", "Antalya"},
	"DXB": {"DXB", "AE", "Dubai"},
	"JFK": {"JFK", "US", "New York"},
	"IAH": {"IAH", "US", "Houston"},
	"PEK": {"PEK", "CN", "Beijing"},
	"URC": {"URC", "CN", "Urumqi"},
	"DEL": {"DEL", "IN", "Delhi"},
	"TAS": {"TAS", "UZ", "Tashkent"},
	"FRU": {"FRU", "KG", "Bishkek"},
	"SVO": {"SVO", "RU", "Moscow"},
	"TBS": {"TBS", "GE", "Tbilisi"},
}

// A leg is a scheduled flight between two airports. The reverse direction
// flies under the paired number (odd outbound, even inbound).
type leg struct {
	mkt, op string
	number  int
	minutes int
}

var legs = map[string]leg{
	// Domestic.
	"ALA-NQZ": {"KC", "KC", 851, 95},
	"ALA-CIT": {"FS", "FS", 7211, 75},
	"ALA-SCO": {"KC", "KC", 955, 190},
	"ALA-GUW": {"KC", "KC", 921, 170},
	"ALA-UKK": {"DV", "DV", 711, 95},
	"ALA-KZO": {"FS", "FS", 7243, 110},
	"ALA-PLX": {"DV", "DV", 755, 90},
	"NQZ-CIT": {"FS", "FS", 7217, 120},
	"NQZ-AKX": {"DV", "DV", 723, 130},
	"NQZ-KGF": {"KC", "KC", 861, 45},
	"NQZ-PWQ": {"DV", "DV", 741, 60},
	"NQZ-URA": {"KC", "KC", 967, 150},
	"NQZ-SCO": {"FS", "FS", 7225, 165},
	// International, flown by KC/FS from Kazakhstan.
	"ALA-FRA": {"KC", "KC", 901, 410},
	"NQZ-FRA": {"KC", "KC", 905, 380},
	"NQZ-MUC": {"KC", "KC", 917, 370},
	"ALA-LHR": {"KC", "KC", 941, 445},
	"NQZ-LHR": {"KC", "KC", 943, 420},
	"ALA-IST": {"KC", "KC", 911, 365},
	"NQZ-IST": {"KC", "KC", 913, 345},
	"SCO-IST": {"FS", "FS", 7681, 230},
	"CIT-AYT": {"FS", "FS", 7691, 330},
	"ALA-DXB": {"KC", "KC", 895, 320},
	"NQZ-DXB": {"KC", "KC", 897, 330},
	"CIT-DXB": {"FS", "FS", 7093, 290},
	"ALA-PEK": {"KC", "KC", 887, 300},
	"ALA-URC": {"KC", "KC", 883, 110},
	"ALA-DEL": {"KC", "KC", 907, 250},
	"ALA-TAS": {"KC", "KC", 127, 80},
	"NQZ-FRU": {"KC", "KC", 109, 115},
	"NQZ-SVO": {"KC", "KC", 871, 235},
	"ALA-TBS": {"KC", "KC", 135, 240},
	// Partner connections (interline or codeshare).
	"FRA-JFK": {"LH", "LH", 401, 520},
	"FRA-IAH": {"LH", "LH", 441, 645},
	"IST-JFK": {"TK", "TK", 1, 650},
	"LHR-JFK": {"BA", "BA", 117, 475},
	"FRA-CDG": {"LH", "LH", 1029, 75},
	"IST-CDG": {"TK", "TK", 1821, 235},
}

// flight returns the leg between two airports in the direction travelled.
func flight(from, to string) (leg, bool) {
	if l, ok := legs[from+"-"+to]; ok {
		return l, true
	}
	l, ok := legs[to+"-"+from]
	if !ok {
		return leg{}, false
	}
	if l.number%2 == 1 {
		l.number++
	} else {
		l.number--
	}
	return l, true
}

// A route is a one-way journey from Kazakhstan (or within it), as an
// airport path. Inbound journeys reverse it.
type route struct {
	path   []string
	weight int
	kind   string // domestic, de, gb, tr, ae, cn, us, fr, cis, in, ge
}

var routes = []route{
	{[]string{"ALA", "NQZ"}, 14, "domestic"},
	{[]string{"ALA", "CIT"}, 4, "domestic"},
	{[]string{"ALA", "SCO"}, 3, "domestic"},
	{[]string{"ALA", "GUW"}, 3, "domestic"},
	{[]string{"ALA", "UKK"}, 1, "domestic"},
	{[]string{"ALA", "KZO"}, 1, "domestic"},
	{[]string{"ALA", "PLX"}, 1, "domestic"},
	{[]string{"NQZ", "CIT"}, 3, "domestic"},
	{[]string{"NQZ", "AKX"}, 1, "domestic"},
	{[]string{"NQZ", "KGF"}, 1, "domestic"},
	{[]string{"NQZ", "PWQ"}, 1, "domestic"},
	{[]string{"NQZ", "URA"}, 1, "domestic"},
	{[]string{"NQZ", "SCO"}, 2, "domestic"},
	{[]string{"ALA", "FRA"}, 5, "de"},
	{[]string{"NQZ", "FRA"}, 4, "de"},
	{[]string{"NQZ", "MUC"}, 2, "de"},
	{[]string{"CIT", "ALA", "FRA"}, 1, "de"},
	{[]string{"ALA", "LHR"}, 3, "gb"},
	{[]string{"NQZ", "LHR"}, 3, "gb"},
	{[]string{"ALA", "IST"}, 4, "tr"},
	{[]string{"NQZ", "IST"}, 3, "tr"},
	{[]string{"SCO", "IST"}, 1, "tr"},
	{[]string{"CIT", "AYT"}, 2, "tr"},
	{[]string{"ALA", "DXB"}, 3, "ae"},
	{[]string{"NQZ", "DXB"}, 2, "ae"},
	{[]string{"CIT", "DXB"}, 1, "ae"},
	{[]string{"ALA", "PEK"}, 2, "cn"},
	{[]string{"ALA", "URC"}, 1, "cn"},
	{[]string{"ALA", "FRA", "JFK"}, 2, "us"},
	{[]string{"NQZ", "IST", "JFK"}, 2, "us"},
	{[]string{"ALA", "LHR", "JFK"}, 1, "us"},
	{[]string{"NQZ", "FRA", "IAH"}, 1, "us"},
	{[]string{"ALA", "FRA", "CDG"}, 1, "fr"},
	{[]string{"NQZ", "IST", "CDG"}, 1, "fr"},
	{[]string{"ALA", "TAS"}, 2, "cis"},
	{[]string{"NQZ", "FRU"}, 2, "cis"},
	{[]string{"NQZ", "SVO"}, 2, "cis"},
	{[]string{"ALA", "DEL"}, 2, "in"},
	{[]string{"ALA", "TBS"}, 1, "ge"},
}

// country facts: calling code, currency, residence cities.
type country struct {
	calling  string
	currency string
	cities   []city
	language string // ISO 639-1, for SSR LANG
}

type city struct{ name, postal string }

var countries = map[string]country{
	"KZ": {"7", "KZT", []city{{"Almaty", "050000"}, {"Astana", "010000"}, {"Shymkent", "160000"}, {"Karaganda", "100000"}, {"Atyrau", "060000"}}, "kk"},
	"RU": {"7", "RUB", []city{{"Moscow", "101000"}, {"Novosibirsk", "630000"}, {"Omsk", "644000"}}, "ru"},
	"DE": {"49", "EUR", []city{{"Berlin", "10115"}, {"Frankfurt am Main", "60311"}, {"München", "80331"}, {"Düsseldorf", "40213"}}, "de"},
	"GB": {"44", "GBP", []city{{"London", "SW1A 1AA"}, {"Manchester", "M1 1AE"}, {"Aberdeen", "AB10 1AB"}}, "en"},
	"FR": {"33", "EUR", []city{{"Paris", "75001"}, {"Lyon", "69001"}, {"Pau", "64000"}}, "fr"},
	"US": {"1", "USD", []city{{"New York", "10001"}, {"Houston", "77002"}, {"Seattle", "98101"}}, "en"},
	"TR": {"90", "TRY", []city{{"Istanbul", "34000"}, {"Ankara", "06000"}, {"Antalya", "07000"}}, "tr"},
	"AE": {"971", "AED", []city{{"Dubai", ""}, {"Abu Dhabi", ""}}, "ar"},
	"CN": {"86", "CNY", []city{{"Beijing", "100000"}, {"Urumqi", "830000"}, {"Shanghai", "200000"}}, "zh"},
	"IN": {"91", "INR", []city{{"New Delhi", "110001"}, {"Mumbai", "400001"}, {"Bengaluru", "560001"}}, "hi"},
	"UZ": {"998", "USD", []city{{"Tashkent", "100000"}, {"Samarkand", "140100"}}, "uz"},
	"KG": {"996", "USD", []city{{"Bishkek", "720000"}, {"Osh", "723500"}}, "ky"},
	"GE": {"995", "USD", []city{{"Tbilisi", "0105"}, {"Batumi", "6000"}}, "ka"},
}

// fareRange is the one-way economy fare range in tenge per route kind.
var fareRange = map[string][2]int{
	"domestic": {25_000, 90_000}, "cis": {60_000, 180_000}, "tr": {110_000, 350_000}, "ae": {110_000, 350_000},
	"cn": {130_000, 380_000}, "in": {130_000, 380_000}, "ge": {120_000, 300_000},
	"de": {280_000, 850_000}, "gb": {300_000, 900_000}, "fr": {320_000, 950_000}, "us": {480_000, 1_500_000},
}

// kztPer is roughly how many tenge one unit of a currency buys.
var kztPer = map[string]int64{"KZT": 1, "EUR": 560, "USD": 510, "GBP": 650, "TRY": 14, "AED": 139, "CNY": 71, "RUB": 6, "INR": 6}

// names per nationality. Family names get a feminine form by suffix where
// the language has one.
type nameSet struct {
	male, female, family []string
	feminine             func(string) string
}

func slavic(s string) string {
	switch {
	case strings.HasSuffix(s, "ov"), strings.HasSuffix(s, "ev"), strings.HasSuffix(s, "in"), strings.HasSuffix(s, "yev"):
		return s + "a"
	}
	return s
}

func same(s string) string { return s }

var names = map[string]nameSet{
	"KZ": {[]string{"Nurlan", "Yerlan", "Daniyar", "Arman", "Askar", "Timur", "Bauyrzhan", "Yerzhan", "Aidos", "Zhandos"},
		[]string{"Aigerim", "Dana", "Aruzhan", "Madina", "Saule", "Gulnara", "Zhanar", "Aliya", "Dinara", "Kamila"},
		[]string{"Nurlanov", "Zhaksylykov", "Abenov", "Serikbayev", "Tulegenov", "Akhmetov", "Iskakov", "Kassymov", "Utepov", "Baimukhanov"}, slavic},
	"RU": {[]string{"Dmitry", "Sergey", "Alexei", "Ivan", "Mikhail", "Pavel"},
		[]string{"Olga", "Natalia", "Irina", "Anastasia", "Ekaterina", "Svetlana"},
		[]string{"Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Volkov", "Lebedev"}, slavic},
	"DE": {[]string{"Lukas", "Jonas", "Felix", "Matthias", "Stefan", "Jürgen"},
		[]string{"Anna", "Lena", "Katharina", "Sophie", "Julia", "Birgit"},
		[]string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Köhler"}, same},
	"GB": {[]string{"Oliver", "James", "Harry", "George", "Thomas", "Jack"},
		[]string{"Amelia", "Olivia", "Emily", "Charlotte", "Grace", "Isla"},
		[]string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Davies", "O'Connor"}, same},
	"FR": {[]string{"Louis", "Hugo", "Julien", "Antoine", "Théo", "Mathis"},
		[]string{"Camille", "Léa", "Chloé", "Manon", "Inès", "Juliette"},
		[]string{"Martin", "Bernard", "Dubois", "Lefèvre", "Moreau"}, same},
	"US": {[]string{"Michael", "Daniel", "Ethan", "Ryan", "Noah", "Liam"},
		[]string{"Emma", "Madison", "Ava", "Abigail", "Sophia", "Harper"},
		[]string{"Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Wilson"}, same},
	"TR": {[]string{"Mehmet", "Mustafa", "Emre", "Burak", "Yusuf", "Can"},
		[]string{"Ayşe", "Elif", "Zeynep", "Fatma", "Merve", "Defne"},
		[]string{"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik"}, same},
	"AE": {[]string{"Mohammed", "Ahmed", "Khalid", "Saeed", "Omar", "Hamdan"},
		[]string{"Fatima", "Mariam", "Aisha", "Noura", "Hessa", "Shamma"},
		[]string{"Al Mansoori", "Al Hashimi", "Al Nuaimi", "Al Suwaidi"}, same},
	"CN": {[]string{"Wei", "Jun", "Hao", "Lei", "Ming", "Tao"},
		[]string{"Li Na", "Xiuying", "Mei", "Jing", "Yan", "Fang"},
		[]string{"Wang", "Li", "Zhang", "Liu", "Chen"}, same},
	"IN": {[]string{"Arjun", "Rahul", "Vikram", "Amit", "Rohan", "Karan"},
		[]string{"Priya", "Ananya", "Divya", "Sneha", "Kavya", "Meera"},
		[]string{"Sharma", "Patel", "Iyer", "Reddy", "Singh"}, same},
	"UZ": {[]string{"Jasur", "Bekzod", "Sardor", "Otabek", "Rustam", "Aziz"},
		[]string{"Dilnoza", "Nigora", "Malika", "Shahnoza", "Gulnoza", "Sevara"},
		[]string{"Karimov", "Rakhimov", "Yusupov", "Mirzayev", "Abdullayev"}, slavic},
	"KG": {[]string{"Azamat", "Bakyt", "Nurbek", "Emil", "Aibek", "Tilek"},
		[]string{"Aizada", "Begimai", "Cholpon", "Nazira", "Aigul", "Jyldyz"},
		[]string{"Asanov", "Toktogulov", "Dzhumabaev", "Sadyrov"}, slavic},
}

// nationalities whose names the generator knows, for the "other" mix.
var mixNationalities = []string{"RU", "UZ", "KG", "IN", "FR", "DE", "GB", "US", "TR", "CN", "AE"}

// destination country of a route kind → the local nationality.
var kindNationality = map[string]string{
	"de": "DE", "gb": "GB", "tr": "TR", "ae": "AE", "cn": "CN", "us": "US", "fr": "FR", "in": "IN", "ge": "",
}

// Special meals: code and the nationalities that choose it more often.
var meals = []struct {
	code   string
	weight int
	favour []string
}{
	{"MOML", 6, []string{"KZ", "TR", "AE", "UZ", "KG", "IN"}},
	{"KSML", 2, nil},
	{"HNML", 2, []string{"IN"}},
	{"VJML", 1, []string{"IN"}},
	{"AVML", 1, []string{"IN"}},
	{"VGML", 3, []string{"DE", "GB", "US", "FR"}},
	{"VLML", 2, []string{"DE", "GB", "FR"}},
	{"DBML", 2, nil},
	{"GFML", 2, nil},
	{"LSML", 1, nil},
	{"BLML", 1, nil},
	{"NLML", 1, nil},
	{"SFML", 1, nil},
}

// PRM and medical SSRs with what they need.
type ssrInfo struct {
	code    string
	weight  int
	aid     bool // mobility aid
	medical bool
	escort  bool
}

var prmSSRs = []ssrInfo{
	{"WCHR", 10, true, false, false},
	{"WCHS", 4, true, false, false},
	{"WCHC", 3, true, false, true},
	{"MEDA", 3, false, true, false},
	{"BLND", 3, false, false, true},
	{"DEAF", 3, false, false, false},
	{"DPNA", 3, false, false, true},
	{"SVAN", 1, false, false, false},
	{"MAAS", 2, false, false, false},
	{"OXYG", 1, false, true, false},
	{"STCR", 1, false, true, true},
}

var conditions = []string{
	"Type 1 diabetes, insulin pump",
	"Recovering from hip replacement, cannot bend the left leg",
	"COPD, needs supplemental oxygen in flight",
	"Epilepsy, last seizure in March",
	"Pregnancy, 33 weeks, fit-to-fly letter attached",
	"Heart failure NYHA II, pacemaker fitted",
	"Fractured femur, leg in full cast",
	"Severe anxiety disorder, travels with support person",
}

var mobilityAids = []struct {
	kind    string
	battery string
	weight  int
}{
	{"manual folding wheelchair", "none", 14},
	{"electric wheelchair", "lithium", 68},
	{"electric wheelchair", "dry_cell", 82},
	{"mobility scooter", "wet_cell", 95},
	{"walking frame", "none", 4},
	{"crutches", "none", 2},
}

// Travel agencies by IATA code: silkroad-travel is "96123456" (registry).
var agencies = []struct {
	code, country string
	weight        int
}{
	{"96123456", "KZ", 12},
	{"96234517", "KZ", 4},
	{"96345628", "KZ", 2},
	{"23491234", "DE", 2},
	{"91212345", "GB", 1},
	{"33845612", "TR", 1},
}

// Corporate accounts: steppe-energy is "CORP-STEPPE-ENERGY" (registry).
var corporates = []struct {
	account, domain string
	weight          int
}{
	{"CORP-STEPPE-ENERGY", "steppe-energy", 9},
	{"CORP-CASPIAN-DRILLING", "caspian-drilling", 4},
	{"CORP-ALATAU-BANK", "alatau-bank", 3},
	{"CORP-NOMAD-LOGISTICS", "nomad-logistics", 2},
	{"CORP-EURASIA-MINING", "eurasia-mining", 2},
}

var jobs = []struct{ role, jobType string }{
	{"Drilling engineer", "rotational"},
	{"Reservoir geologist", "permanent"},
	{"HSE officer", "rotational"},
	{"Procurement manager", "permanent"},
	{"Financial analyst", "permanent"},
	{"Field technician", "contractor"},
	{"Chief operating officer", "executive"},
}

// Test card numbers published by card networks and payment providers:
// Luhn-valid, never issued to a real cardholder.
var testCards = []struct {
	pan, brand string
	cvvLen     int
}{
	{"4111111111111111", "visa", 3},
	{"4012888888881881", "visa", 3},
	{"4000056655665556", "visa", 3},
	{"4242424242424242", "visa", 3},
	{"5555555555554444", "mastercard", 3},
	{"5105105105105100", "mastercard", 3},
	{"2223003122003222", "mastercard", 3},
	{"378282246310005", "amex", 4},
	{"371449635398431", "amex", 4},
	{"6011111111111117", "discover", 3},
	{"3530111333300000", "jcb", 3},
	{"6200000000000005", "unionpay", 3},
}

var banks = map[string][]string{
	"KZ": {"Halyk Bank", "Kaspi Bank", "ForteBank", "Bank CenterCredit"},
	"DE": {"Deutsche Bank", "Commerzbank", "Sparkasse"},
	"GB": {"Barclays", "HSBC UK", "Lloyds Bank"},
	"US": {"Chase", "Bank of America", "Citibank"},
	"TR": {"Garanti BBVA", "Ziraat Bankası"},
	"AE": {"Emirates NBD", "First Abu Dhabi Bank"},
	"CN": {"ICBC", "Bank of China"},
	"RU": {"Tinkoff", "Alfa-Bank"},
	"IN": {"HDFC Bank", "ICICI Bank"},
	"FR": {"BNP Paribas", "Société Générale"},
}

var userAgents = []struct{ ua, os string }{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "Windows 11"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "macOS 14"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "iOS 18"},
	{"Mozilla/5.0 (Linux; Android 15; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", "Android 15"},
	{"AirAstanaApp/5.12.0 (Android 14; Pixel 8)", "Android 14"},
	{"AirAstanaApp/5.12.0 (iOS 17.6; iPhone15,2)", "iOS 17"},
}

var interests = []string{"mountain hiking", "skiing at Shymbulak", "football", "classical music", "halal food blogs",
	"photography", "business travel tips", "yoga", "chess", "horse riding"}

var surveyQuestions = []struct {
	q       string
	answers []string
}{
	{"How satisfied were you with check-in?", []string{"Very satisfied, quick bag drop", "The kiosk rejected my passport twice", "Fine"}},
	{"How was the food on board?", []string{"My halal meal was not loaded", "Good, the gluten-free meal was fine", "Too salty"}},
	{"Would you recommend us to a friend?", []string{"Yes, 9 out of 10", "Maybe, the delay ruined my connection", "No"}},
	{"How can we improve assistance at the airport?", []string{"Wheelchair arrived 40 minutes late", "Staff were kind to my mother", "More signs in Kazakh please"}},
}

var bagDescriptions = []string{"black Samsonite spinner with a red ribbon", "blue duffel bag, broken zip", "grey hard-shell case, 28 inch",
	"green backpack with ski boots", "brown leather suitcase with initials", "child car seat in a clear bag"}

var bagContents = []string{"insulin pens and a glucose meter", "prayer mat and Quran", "laptop charger", "winter clothes",
	"baby formula", "prescription glasses", "wedding gifts", "work documents"}

var statements = []string{"Bag did not arrive on the belt after a 50-minute connection",
	"Wheel broken and shell cracked on arrival",
	"Lock cut open, jewellery missing",
	"Bag delivered two days late to the hotel, medication inside was needed"}

var incidentSummaries = map[string][]string{
	"delay":        {"Flight delayed 5 hours, missed client meeting", "Departure delayed overnight, hotel provided"},
	"cancellation": {"Flight cancelled, rebooked on the next morning flight"},
	"diversion":    {"Diverted to Karaganda because of fog at destination"},
	"injury":       {"Slipped on wet stairs while boarding"},
	"security":     {"Laptop bag searched, item confiscated at screening"},
}

var injuryDetails = []string{"Sprained right ankle, treated by airport medics", "Cut on the forehead, two stitches", "Back pain, painkillers given"}
