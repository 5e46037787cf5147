package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestNormalizeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Account ID":        "account_id",
		"account_id":        "account_id",
		"AccountId":         "account_id",
		"accountID":         "account_id",
		" ACCOUNT-ID ":      "account_id",
		"\ufeffAccount ID":  "account_id",
		"acct_id":           "acct_id",
		"E-mail":            "e_mail",
		"Email Address":     "email_address",
		"HTTPServer":        "http_server",
		"Account #":         "account_number",
		"Churn %":           "churn_percent",
		"Número de Cliente": "numero_de_cliente",
		"Créé le":           "cree_le",
		"address2":          "address2",
		"Address 2":         "address_2",
		"MRR (USD)":         "mrr_usd",
		"__x__":             "x",
		"":                  "",
		"!!!":               "",
	} {
		require.Equal(t, want, mapping.NormalizeName(in), "%q", in)
	}
}

func TestNewAttributeID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Favourite Colour": "favourite_colour",
		"2nd Contact":      "c_2nd_contact",
		"Größe":            "groe",
		"日本語":              "",
		"!!!":              "",
		"A Very Long Column Name That Goes On And On Beyond Every Reasonable Limit Of Length": "a_very_long_column_name_that_goes_on_and_on_beyond_every_reason",
	} {
		got := mapping.NewAttributeID(in)
		require.Equal(t, want, got, "%q", in)
		require.LessOrEqual(t, len(got), 63)
	}
}

func TestMatchAttribute(t *testing.T) {
	t.Parallel()
	accounts := accounts(t)
	users := object(t, intakev1.ObjectType_OBJECT_TYPE_USERS)
	for _, tc := range []struct {
		model  *intakev1.DataObject
		column string
		want   mapping.Match
	}{
		{accounts, "account_id", mapping.Match{Attribute: "account_id", Reason: "same name", Confidence: 1}},
		{accounts, "Account ID", mapping.Match{Attribute: "account_id", Reason: "same name", Confidence: 1}},
		{accounts, "AccountId", mapping.Match{Attribute: "account_id", Reason: "same name", Confidence: 1}},
		{accounts, "ACCOUNTID", mapping.Match{Attribute: "account_id", Reason: "same name", Confidence: 0.9}},
		{accounts, "acct_id", mapping.Match{Attribute: "account_id", Reason: "synonym of account_id", Confidence: 0.85}},
		{accounts, "Customer ID", mapping.Match{Attribute: "account_id", Reason: "synonym of account_id", Confidence: 0.85}},
		{accounts, "Company Name", mapping.Match{Attribute: "name", Reason: "synonym of name", Confidence: 0.8}},
		{accounts, "Created At", mapping.Match{Attribute: "created_date", Reason: "synonym of created_date", Confidence: 0.8}},
		{accounts, "Headcount", mapping.Match{Attribute: "employees", Reason: "synonym of employees", Confidence: 0.8}},
		{accounts, "ARR", mapping.Match{Attribute: "annual_revenue", Reason: "synonym of annual_revenue", Confidence: 0.8}},
		{accounts, "Active", mapping.Match{Attribute: "is_active", Reason: "synonym of is_active", Confidence: 0.8}},
		{accounts, "Comments", mapping.Match{Attribute: "notes", Reason: "synonym of notes", Confidence: 0.8}},
		{users, "E-mail", mapping.Match{Attribute: "email", Reason: "same name", Confidence: 0.9}},
		{users, "Mail", mapping.Match{Attribute: "email", Reason: "synonym of email", Confidence: 0.8}},
		{users, "Email Address", mapping.Match{Attribute: "email", Reason: "synonym of email", Confidence: 0.8}},
		{users, "User Name", mapping.Match{Attribute: "name", Reason: "synonym of name", Confidence: 0.8}},
		{users, "Last Login", mapping.Match{Attribute: "last_login_date", Reason: "synonym of last_login_date", Confidence: 0.8}},
	} {
		got, ok := mapping.MatchAttribute(tc.column, tc.model)
		require.True(t, ok, tc.column)
		require.Equal(t, tc.want, got, tc.column)
	}
	// Display names count as names.
	m := &intakev1.DataObject{Attributes: []*intakev1.Attribute{{AttributeId: "c_42", DisplayName: "Health Score"}}}
	got, ok := mapping.MatchAttribute("health score", m)
	require.True(t, ok)
	require.Equal(t, mapping.Match{Attribute: "c_42", Reason: "same name", Confidence: 0.95}, got)
	// A synonym of an attribute the model lacks matches nothing.
	_, ok = mapping.MatchAttribute("Email", accounts)
	require.False(t, ok)
	_, ok = mapping.MatchAttribute("Favourite colour", accounts)
	require.False(t, ok)
	require.Contains(t, mapping.Synonyms("account_id"), "customerid")
}

func TestInferType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		samples []string
		typ     intakev1.AttributeType
		format  string
		conf    float64
	}{
		{"iso dates", []string{"2024-01-31", "2024-02-29", "", "2023-12-01"}, tDate, "yyyy-MM-dd", 1},
		{"iso date-times", []string{"2024-01-31T10:00:00Z", "2024-02-29T23:59:59+02:00"}, tTimestamp, "iso8601", 1},
		{"iso dates and date-times", []string{"2024-01-31", "2024-02-29T23:59:59.5+02:00"}, tTimestamp, "iso8601", 1},
		{"midnights are dates", []string{"2024-01-31 00:00:00", "2024-02-29 00:00:00"}, tDate, "yyyy-MM-dd HH:mm:ss", 1},
		{"us date-times", []string{"01/31/2024 10:15:30", "12/01/2023 23:00:00"}, tTimestamp, "MM/dd/yyyy HH:mm:ss", 1},
		{"am/pm", []string{"01/31/2024 9:05 PM", "12/01/2023 12:00 AM"}, tTimestamp, "MM/dd/yyyy h:mm a", 1},
		{"ambiguous date-times", []string{"01/02/2024 10:00", "03/04/2024 11:30"}, tTimestamp, "MM/dd/yyyy HH:mm", 0.6},
		{"us dates", []string{"01/31/2024", "12/01/2023", "02/29/2024"}, tDate, "MM/dd/yyyy", 1},
		{"european dates", []string{"31/01/2024", "01/12/2023", "29/02/2024"}, tDate, "dd/MM/yyyy", 1},
		{"ambiguous dates", []string{"01/02/2024", "03/04/2024", "12/11/2023"}, tDate, "MM/dd/yyyy", 0.6},
		{"german dates", []string{"31.01.2024", "1.2.2024"}, tDate, "dd.MM.yyyy", 1},
		{"date and time", []string{"2024-01-31 10:00", "2024-02-01 23:59"}, tTimestamp, "yyyy-MM-dd HH:mm", 1},
		{"month names", []string{"Jan 5, 2024", "February 29, 2024"}, tDate, "MMM d, yyyy", 1},
		{"integers", []string{"1", "42", "-7", "1,234"}, tNumber, "", 1},
		{"decimals", []string{"1.5", "0.25", "1,234.56"}, tNumber, "", 1},
		{"decimal comma", []string{"1,5", "0,25", "1.234,56"}, tNumber, "1.234,56", 1},
		{"space grouping", []string{"1 234,5", "12 345 678,9"}, tNumber, "1 234,56", 1},
		{"dollars", []string{"$1,234.56", "$0.99", "($12.00)"}, tCurrency, "", 1},
		{"iso codes", []string{"EUR 12,50", "EUR 1.234,00", "EUR -3,00"}, tCurrency, "1.234,56", 1},
		{"mixed currency and plain", []string{"12.50", "$3.00", "4"}, tCurrency, "", 1},
		{"booleans", []string{"true", "False", "yes", "NO"}, tBoolean, "", 1},
		{"zero and one are numbers", []string{"0", "1", "1"}, tNumber, "", 1},
		{"leading zeros are text", []string{"00123", "00456"}, tText, "", 1},
		{"text", []string{"Acme", "Globex", "42"}, tText, "", 1},
		{"nulls ignored", []string{"NULL", "n/a", "", "7"}, tNumber, "", 1},
		{"no samples", []string{"", "  "}, tText, "", 0},
		{"mostly dates", []string{"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10", "soon"}, tDate, "yyyy-MM-dd", 10.0 / 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			typ, format, conf := mapping.InferType(tc.samples)
			require.Equal(t, tc.typ, typ)
			require.Equal(t, tc.format, format)
			require.InDelta(t, tc.conf, conf, 1e-9)
		})
	}
}

// TestInferredFormatsReadTheSamples checks that what InferType proposes
// compiles and reads its samples.
func TestInferredFormatsReadTheSamples(t *testing.T) {
	t.Parallel()
	for _, samples := range [][]string{
		{"31.01.2024", "1.2.2024"}, {"Jan 5, 2024"}, {"2024-01-31T10:00:00Z"}, {"31.01.2024 17:45"}, {"01/31/2024 9:05 PM"}, {"1 234,5"}, {"EUR 12,50", "EUR 1.234,00"}, {"($12.00)", "$1"}, {"yes", "no"},
	} {
		typ, format, _ := mapping.InferType(samples)
		for _, s := range samples {
			c := preview(t, typ, format, s, nil)
			require.Empty(t, c.Err, "%v %q: %q", typ, format, s)
		}
	}
}
