package mapping

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseNumberFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format    string
		currency  bool
		thousands rune
		decimal   byte
		err       string
	}{
		{format: "", thousands: ',', decimal: '.'},
		{format: "1,234.56", thousands: ',', decimal: '.'},
		{format: "1.234,56", thousands: '.', decimal: ','},
		{format: "1 234,56", thousands: ' ', decimal: ','},
		{format: "1\u00a0234,56", thousands: ' ', decimal: ','},
		{format: "1'234.56", thousands: '\'', decimal: '.'},
		{format: "1,234,567.5", thousands: ',', decimal: '.'},
		{format: "1.234.567", thousands: '.', decimal: ','},
		{format: "1,234,567", thousands: ',', decimal: '.'},
		{format: "1234.5", decimal: '.'},
		{format: "1234,56", decimal: ','},
		{format: "1234", decimal: '.'},
		{format: "-1,234.56", thousands: ',', decimal: '.'},
		{format: "$1,234.56", currency: true, thousands: ',', decimal: '.'},
		{format: "1.234,56 €", currency: true, thousands: '.', decimal: ','},
		{format: "(EUR 1.234,56)", currency: true, thousands: '.', decimal: ','},
		{format: "1,234", err: `"1,234" is ambiguous`},
		{format: "1 234", err: `"1 234" is ambiguous`},
		{format: "abc", err: `"abc" is not a number format`},
		{format: "MM/dd/yyyy", err: `"MM/dd/yyyy" is not a number format`},
		{format: "1,23.5", err: "thousands separators must be followed by 3 digits"},
		{format: "1.234.56,7", err: "thousands separators must be followed by 3 digits"},
		{format: "1,234.567.8", err: "the decimal separator must be one"},
		{format: "$1,234.56", err: `"$1,234.56" is not a number format`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			nf, err := parseNumberFormat(tc.format, tc.currency)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, numberFormat{thousands: tc.thousands, decimal: tc.decimal}, nf)
		})
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		in     string
		want   string // "" means rejected
	}{
		{"", "0", "0"},
		{"", "1234.56", "1234.56"},
		{"", "-1234.56", "-1234.56"},
		{"", "+12", "12"},
		{"", "1,234.56", "1234.56"},
		{"", "1,234,567", "1234567"},
		{"", "007", "7"},
		{"", "00.50", "0.50"},
		{"", ".5", "0.5"},
		{"", "-.5", "-0.5"},
		{"", "5.", "5"},
		{"", "-0", "0"},
		{"", "-0.00", "0.00"},
		{"", "1.50", "1.50"},
		{"", "1e3", "1000"},
		{"", "1.5E-3", "0.0015"},
		{"", "1.50e1", "15.0"},
		{"", "-2.5e+2", "-250"},
		{"", "1.23E+11", "123000000000"},
		{"", "12345e-2", "123.45"},
		{"", "abc", ""},
		{"", "1,5", ""},
		{"", "12,34", ""},
		{"", "1,2345", ""},
		{"", ",123", ""},
		{"", "1.2.3", ""},
		{"", "1e", ""},
		{"", "1e99999", ""},
		{"", "-", ""},
		{"", ".", ""},
		{"", "NaN", ""},
		{"", "Infinity", ""},
		{"", "1 234", ""},
		{"", "12abc", ""},
		{"", "--1", ""},
		{"1234.56", "1234.56", "1234.56"},
		{"1234.56", "1,234.56", ""},
		{"1.234,56", "1.234,56", "1234.56"},
		{"1.234,56", "1234,56", "1234.56"},
		{"1.234,56", "-1.234.567,8", "-1234567.8"},
		{"1.234,56", "1.234", "1234"},
		{"1.234,56", "1,234.56", ""},
		{"1.234,56", "1234.56", ""},
		{"1 234,56", "1 234,56", "1234.56"},
		{"1 234,56", "1\u00a0234\u00a0567,5", "1234567.5"},
		{"1 234,56", "1\u202f234,5", "1234.5"},
		{"1 234,56", "12 34,5", ""},
		{"1'234.56", "1'234.56", "1234.56"},
		{"1'234.56", "1\u2019234.56", "1234.56"},
		{"1234,56", "1234,56", "1234.56"},
	} {
		t.Run(tc.format+"/"+tc.in, func(t *testing.T) {
			t.Parallel()
			nf, err := parseNumberFormat(tc.format, false)
			require.NoError(t, err)
			var p numberParser
			got, ok := p.parse(&nf, tc.in)
			if tc.want == "" {
				require.False(t, ok, "accepted as %q", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseCurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		in     string
		want   string
	}{
		{"", "12.50", "12.50"},
		{"", "$1,234.56", "1234.56"},
		{"", "$ 1,234.56", "1234.56"},
		{"", "1,234.56 USD", "1234.56"},
		{"", "USD 1,234.56", "1234.56"},
		{"", "US$12", "12"},
		{"", "£3", "3"},
		{"", "¥1,000", "1000"},
		{"", "-$5.00", "-5.00"},
		{"", "$-5.00", "-5.00"},
		{"", "($5.00)", "-5.00"},
		{"", "$(5.00)", "-5.00"},
		{"", "(5.00)", "-5.00"},
		{"", "( $ 1,234.56 )", "-1234.56"},
		{"", "-(5.00)", ""},
		{"", "(-5.00)", ""},
		{"", "$", ""},
		{"", "USD", ""},
		{"", "abc", ""},
		{"", "DOLLARS 5", ""},
		{"", "5 $ $ $ $ $", ""},
		{"", "$5$", "5"},
		{"1.234,56 €", "1.234,56 €", "1234.56"},
		{"1.234,56 €", "€ -1.234,56", "-1234.56"},
		{"1.234,56 €", "EUR 12,5", "12.5"},
		{"1.234,56 €", "12.50", ""},
	} {
		t.Run(tc.format+"/"+tc.in, func(t *testing.T) {
			t.Parallel()
			nf, err := parseNumberFormat(tc.format, true)
			require.NoError(t, err)
			var p numberParser
			got, ok := p.parseCurrency(&nf, tc.in)
			if tc.want == "" {
				require.False(t, ok, "accepted as %q", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestUnsignedOnePassAgreesWithDigits checks the one-pass number parser
// against the digit-buffer one (which also reads exponents) on generated
// numbers of every shape.
func TestUnsignedOnePassAgreesWithDigits(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"0", "0", "1", "5", "9", ",", ".", " ", "\u00a0", "'", "e", "x", "00", "000", "123", ",000", ".5"}
	formats := []string{"", "1.234,5", "1 234,5", "1234,5", "1'234.5", "1234.5"}
	for range 200000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		in := b.String()
		if strings.ContainsAny(in, "eE") {
			continue
		}
		nf, err := parseNumberFormat(formats[rng.IntN(len(formats))], false)
		require.NoError(t, err)
		neg := rng.IntN(3) == 0
		var p1, p2 numberParser
		got, ok := p1.unsigned(&nf, in, neg, in)
		want, wok := p2.unsignedExp(&nf, in, neg, in)
		require.Equal(t, wok, ok, "%q (neg %v, format %v)", in, neg, nf)
		require.Equal(t, want, got, "%q (neg %v, format %v)", in, neg, nf)
	}
}
