package mapping

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// NormalizeName turns a column or attribute name into the form names are
// compared in: lowercase ASCII words joined by '_', with accents dropped,
// camelCase split and "#" read as "number": "Account ID", "account-id",
// "AccountId" and " ACCOUNT_ID " are all "account_id"; "E-mail" is "e_mail";
// "Account #" is "account_number".
func NormalizeName(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "\ufeff")
	var b strings.Builder
	b.Grow(len(s) + 4)
	sep := false // a '_' is due before the next letter or digit
	var prev rune
	runes := []rune(norm.NFD.String(s))
	for i, r := range runes {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // a combining accent
		case r == '#':
			sep = true
			if b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteString("number")
			prev = 'r'
			continue
		case r == '%':
			sep = true
			if b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteString("percent")
			prev = 't'
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			// camelCase: a word starts at an upper-case letter after a
			// lower-case letter or a digit, or at the last capital of an
			// acronym followed by a lower-case letter (HTTPServer).
			if unicode.IsUpper(r) && b.Len() > 0 && !sep {
				if unicode.IsLower(prev) || unicode.IsDigit(prev) ||
					unicode.IsUpper(prev) && i+1 < len(runes) && unicode.IsLower(runes[i+1]) {
					sep = true
				}
			}
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			sep = false
			lr := unicode.ToLower(r)
			if lr < unicode.MaxASCII {
				b.WriteRune(lr)
			} else if unicode.IsLetter(lr) || unicode.IsDigit(lr) {
				b.WriteRune(lr)
			}
			prev = r
		default:
			sep = true
			prev = r
		}
	}
	return b.String()
}

// NewAttributeID proposes the id of a new attribute for a column: its
// normalised name, made a valid attribute id (lowercase ASCII letters,
// digits and '_', starting with a letter, at most 63 characters). It
// returns "" when the name has no letter or digit at all.
func NewAttributeID(column string) string {
	n := NormalizeName(column)
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteByte(c)
		}
	}
	id := strings.Trim(b.String(), "_")
	for strings.Contains(id, "__") {
		id = strings.ReplaceAll(id, "__", "_")
	}
	if id == "" {
		return ""
	}
	if id[0] < 'a' || id[0] > 'z' {
		id = "c_" + id
	}
	if len(id) > 63 {
		id = strings.TrimRight(id[:63], "_")
	}
	return id
}

// synonyms lists, per attribute id, other names that columns holding it
// commonly have, normalised (NormalizeName) and without '_'.
var synonyms = map[string][]string{
	"account_id":        {"account", "acct", "acctid", "acctno", "acctnumber", "accountnumber", "accountno", "accountkey", "accountref", "customerid", "customer", "custid", "customernumber", "customerno", "clientid", "companyid", "orgid", "organizationid", "organisationid", "tenantid", "crmid", "sfdcid", "salesforceid", "accountexternalid", "externalaccountid"},
	"parent_account_id": {"parentaccount", "parentid", "parentacct", "parentacctid", "parentcustomerid", "parentcompanyid", "parentorgid", "ultimateparentid"},
	"user_id":           {"user", "userid", "uid", "usernumber", "memberid", "contactid", "personid", "employeeid", "login", "loginid", "externaluserid"},
	"name":              {"accountname", "customername", "companyname", "company", "organization", "organisation", "orgname", "clientname", "fullname", "displayname", "username"},
	"email":             {"email", "emailaddress", "mail", "emailid", "useremail", "contactemail", "workemail"},
	"first_name":        {"firstname", "givenname", "forename", "fname", "first"},
	"last_name":         {"lastname", "surname", "familyname", "lname", "last"},
	"title":             {"jobtitle", "position", "designation"},
	"role":              {"userrole", "jobrole"},
	"status":            {"accountstatus", "state", "lifecyclestage", "stage", "customerstatus"},
	"industry":          {"sector", "vertical", "segment"},
	"region":            {"territory", "geo", "geography", "area", "salesregion"},
	"employees":         {"employeecount", "numemployees", "numberofemployees", "noofemployees", "headcount", "staff", "companysize", "seats", "employeesnumber"},
	"annual_revenue":    {"revenue", "annualrevenue", "arr", "yearlyrevenue", "annualrecurringrevenue", "contractvalue", "acv"},
	"mrr":               {"monthlyrevenue", "monthlyrecurringrevenue", "monthlyrecurring"},
	"is_active":         {"active", "isactive", "enabled", "activeflag", "activestatus"},
	"active":            {"isactive", "enabled", "activeflag"},
	"created_date":      {"created", "createdat", "createdon", "createddate", "creationdate", "datecreated", "createtime", "signupdate", "startdate", "customersince", "since"},
	"renewal_date":      {"renewal", "renewsat", "renewalon", "nextrenewal", "nextrenewaldate", "contractend", "contractenddate", "enddate", "expirationdate", "expirydate"},
	"notes":             {"note", "comment", "comments", "remarks", "description"},
	"logins":            {"logincount", "numlogins", "numberoflogins", "totallogins"},
	"last_login_date":   {"lastlogin", "lastloginat", "lastseen", "lastseenat", "lastactive", "lastactivity", "lastactivitydate"},
	"activity":          {"event", "eventname", "action", "activityname"},
	"module":            {"feature", "product", "modulename", "area", "section"},
	"timestamp":         {"time", "datetime", "eventtime", "eventdate", "occurredat", "ts", "date", "when"},
	"collection_id":     {"collection", "listid", "segmentid", "groupid"},
	"aggregation":       {"metric", "metricname", "aggregationname"},
	"date":              {"day", "period", "asof", "asofdate", "reportdate"},
	"value":             {"count", "total", "amount", "metricvalue", "val"},
	"license":           {"licence", "licensetype", "seattype", "plan"},
	"teams":             {"team", "teamname", "teamnames", "groups"},
	"role_id":           {"role", "roleid", "assignmentrole", "rolename"},
	"team_user_email":   {"owneremail", "assigneeemail", "csmemail", "useremail", "email", "teamuser", "owner"},
	"task_id":           {"task", "taskid", "ticketid", "todoid"},
	"due_date":          {"due", "dueon", "deadline", "duedate"},
	"touchpoint_id":     {"touchpoint", "touchpointid", "interactionid", "activityid", "meetingid"},
	"subject":           {"topic", "headline", "summary", "title"},
	"content":           {"body", "text", "details", "description", "message", "notes"},
	"foreign_key_id":    {"foreignkey", "externalid", "externalkey", "systemid", "foreignid"},
}

// Synonyms returns the other names (normalised, without '_') that a column
// holding the attribute commonly has, e.g. "acctid" and "customerid" for
// account_id.
func Synonyms(attribute string) []string {
	return append([]string(nil), synonyms[attribute]...)
}

// Match is how a column matches an attribute.
type Match struct {
	Attribute string
	// Reason is "same name" or "synonym of <attribute>".
	Reason     string
	Confidence float64
}

// MatchAttribute finds the attribute of the model a column most likely
// holds: its id or display name equal to the column's normalised name
// (confidence 1 and 0.95), equal but for '_' ("accountid", 0.9), or a
// common synonym ("Customer ID" for account_id, 0.8). Among synonyms a key
// wins. It returns false when nothing matches.
func MatchAttribute(column string, model *intakev1.DataObject) (Match, bool) {
	n := NormalizeName(column)
	if n == "" {
		return Match{}, false
	}
	compact := strings.ReplaceAll(n, "_", "")
	best := Match{}
	consider := func(m Match) {
		if m.Confidence > best.Confidence {
			best = m
		}
	}
	keys := modelKeys(model)
	for _, a := range model.GetAttributes() {
		id := a.GetAttributeId()
		switch {
		case id == n:
			consider(Match{Attribute: id, Reason: "same name", Confidence: 1})
		case a.GetDisplayName() != "" && NormalizeName(a.GetDisplayName()) == n:
			consider(Match{Attribute: id, Reason: "same name", Confidence: 0.95})
		case strings.ReplaceAll(id, "_", "") == compact:
			consider(Match{Attribute: id, Reason: "same name", Confidence: 0.9})
		default:
			for _, s := range synonyms[id] {
				if s == compact {
					c := 0.8
					if isIn(keys, id) {
						c = 0.85
					}
					consider(Match{Attribute: id, Reason: "synonym of " + id, Confidence: c})
					break
				}
			}
		}
	}
	return best, best.Attribute != ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isIn(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dateCandidates are the date formats InferType tries, most common first.
// Where two read the same values differently (MM/dd vs dd/MM), the first
// wins when the samples cannot tell them apart.
var dateCandidates = []string{
	"yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss", "iso8601", "MM/dd/yyyy", "dd/MM/yyyy", "dd.MM.yyyy", "yyyy/MM/dd", "dd-MM-yyyy",
	"MM-dd-yyyy", "MM/dd/yyyy HH:mm", "dd/MM/yyyy HH:mm", "MM/dd/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm:ss", "dd.MM.yyyy HH:mm", "dd.MM.yyyy HH:mm:ss",
	"MM/dd/yyyy h:mm a", "MM/dd/yyyy h:mm:ss a", "MM/dd/yy", "dd/MM/yy", "dd.MM.yy", "dd MMM yyyy", "MMM d, yyyy", "dd-MMM-yyyy",
}

// nullLike are cell values InferType ignores as meaning "no value".
var nullLike = map[string]bool{"null": true, "n/a": true, "na": true, "none": true, "nil": true, "-": true, "--": true}

// InferType guesses the attribute type of a column from sample values: a
// Date with the pattern of its dates (among common ones; yyyy-MM-dd and
// ISO 8601 first, MM/dd/yyyy before dd/MM/yyyy when the samples fit both),
// or a Timestamp with that pattern when some sample has a time of day other
// than midnight (dates written with 00:00:00 are still dates),
// Currency when amounts carry a currency symbol or code or parentheses,
// Number (format "" for 1,234.56, or "1.234,56" or "1 234,56" for a decimal
// comma), Boolean for true/false, yes/no words, else Text. Empty cells and
// null markers are ignored. The confidence (0..1) is the share of samples
// that fit, lower when dates are ambiguous; Text with no sample is 0.
func InferType(samples []string) (intakev1.AttributeType, string, float64) {
	var vals []string
	for _, s := range samples {
		t := trimSpace(s)
		if t == "" || nullLike[strings.ToLower(t)] {
			continue
		}
		vals = append(vals, t)
	}
	if len(vals) == 0 {
		return intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, "", 0
	}
	total := float64(len(vals))
	share := func(ok func(string) bool) float64 {
		n := 0
		for _, v := range vals {
			if ok(v) {
				n++
			}
		}
		return float64(n) / total
	}
	const enough = 0.9 // the share of samples a type must fit

	// Identifiers with leading zeros ("00123") are text, not numbers.
	if share(func(v string) bool { return len(v) > 1 && v[0] == '0' && allDigits(v) }) > 0 {
		return intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, "", 1
	}
	// Booleans, written as words.
	if f := share(func(v string) bool { _, ok := parseBool(v); return ok && !isDigit(v[0]) }); f >= enough {
		return intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, "", f
	}
	// Dates: the candidate that reads the most samples (the first of
	// equals); less sure when another reads them as different dates.
	best, bestFit := -1, 0.0
	formats := make([]dateFormat, len(dateCandidates))
	fits := make([]float64, len(dateCandidates))
	for i, f := range dateCandidates {
		formats[i], _ = parseDateFormat(f)
		fits[i] = share(func(v string) bool { _, ok, _ := formats[i].parse(v); return ok })
		if fits[i] > bestFit {
			best, bestFit = i, fits[i]
		}
	}
	if best >= 0 && bestFit >= enough {
		conf := bestFit
		for i := range dateCandidates {
			if i == best || fits[i] < bestFit {
				continue
			}
			for _, v := range vals {
				a, ok1, _ := formats[best].parse(v)
				b, ok2, _ := formats[i].parse(v)
				if ok1 && ok2 && a != b {
					conf *= 0.6 // e.g. 01/02/2024: January 2 or February 1
					break
				}
			}
			if conf < bestFit {
				break
			}
		}
		typ := intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
		for _, v := range vals {
			if f, ok, _ := formats[best].fields(v); ok && (f.h != 0 || f.mi != 0 || f.sec != 0 || f.usec != 0) {
				typ = intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP
				break
			}
		}
		return typ, dateCandidates[best], conf
	}
	var np numberParser
	// Numbers and currency, in the formats that read the most samples.
	for _, nf := range []string{"", "1.234,56", "1 234,56"} {
		f, _ := parseNumberFormat(nf, true)
		plain := share(func(v string) bool { _, ok := np.parse(&f, v); return ok })
		money := share(func(v string) bool { _, ok := np.parseCurrency(&f, v); return ok })
		marked := share(func(v string) bool {
			_, plainOK := np.parse(&f, v)
			_, moneyOK := np.parseCurrency(&f, v)
			return moneyOK && !plainOK
		})
		switch {
		case plain >= enough && marked == 0:
			return intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, nf, plain
		case money >= enough:
			return intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY, nf, money
		}
	}
	return intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, "", 1
}
