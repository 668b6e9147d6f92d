package main

import (
	"encoding/json"
	"strconv"
	"strings"
)

// currencies maps each active ISO 4217 code to its number of minor units
// (2 for INR: paise; 0 for JPY; 3 for KWD).
var currencies = func() map[string]int {
	const list = `AED2 AFN2 ALL2 AMD2 AOA2 ARS2 AUD2 AWG2 AZN2 BAM2 BBD2 BDT2 BGN2 BHD3 BIF0
BMD2 BND2 BOB2 BRL2 BSD2 BTN2 BWP2 BYN2 BZD2 CAD2 CDF2 CHF2 CLP0 CNY2 COP2 CRC2 CUP2 CVE2
CZK2 DJF0 DKK2 DOP2 DZD2 EGP2 ERN2 ETB2 EUR2 FJD2 FKP2 GBP2 GEL2 GHS2 GIP2 GMD2 GNF0 GTQ2
GYD2 HKD2 HNL2 HTG2 HUF2 IDR2 ILS2 INR2 IQD3 IRR2 ISK0 JMD2 JOD3 JPY0 KES2 KGS2 KHR2 KMF0
KPW2 KRW0 KWD3 KYD2 KZT2 LAK2 LBP2 LKR2 LRD2 LSL2 LYD3 MAD2 MDL2 MGA2 MKD2 MMK2 MNT2 MOP2
MRU2 MUR2 MVR2 MWK2 MXN2 MYR2 MZN2 NAD2 NGN2 NIO2 NOK2 NPR2 NZD2 OMR3 PAB2 PEN2 PGK2 PHP2
PKR2 PLN2 PYG0 QAR2 RON2 RSD2 RUB2 RWF0 SAR2 SBD2 SCR2 SDG2 SEK2 SGD2 SHP2 SLE2 SOS2 SRD2
SSP2 STN2 SVC2 SYP2 SZL2 THB2 TJS2 TMT2 TND3 TOP2 TRY2 TTD2 TWD2 TZS2 UAH2 UGX0 USD2 UYU2
UZS2 VES2 VND0 VUV0 WST2 XAF0 XCD2 XCG2 XOF0 XPF0 YER2 ZAR2 ZMW2 ZWG2`
	m := map[string]int{}
	for _, f := range strings.Fields(list) {
		m[f[:3]] = int(f[3] - '0')
	}
	return m
}()

// maxMinorUnits bounds an amount (about 10^13 in major units), far beyond
// any believable payment, so that sums cannot overflow.
const maxMinorUnits = 1_000_000_000_000_000

// checkCurrency returns the minor units of code, or an error for field.
func checkCurrency(field, code string) (int, error) {
	if code == "" {
		return 0, invalid(field, "required: an ISO 4217 currency code such as INR, USD or EUR")
	}
	units, ok := currencies[code]
	if !ok {
		return 0, invalid(field, "%q is not an ISO 4217 currency code (such as INR, USD or EUR; upper case)", code)
	}
	return units, nil
}

// parseAmount reads a positive JSON number with at most units decimal
// places as a count of minor units: 100.50 INR is 10050 paise. It refuses
// strings, exponents, zero, negatives and more precision than the currency
// has, naming field.
func parseAmount(field string, raw json.RawMessage, units int) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, invalid(field, "required: a number more than 0")
	}
	if s[0] == '"' {
		return 0, invalid(field, "want a number, not a string")
	}
	if strings.ContainsAny(s, "eE") {
		return 0, invalid(field, "write the amount as a plain decimal such as 100.50")
	}
	if s[0] == '-' {
		return 0, invalid(field, "must be more than 0")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, invalid(field, "want a number more than 0")
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > units {
		return 0, invalid(field, "at most %d decimal places for this currency", units)
	}
	frac += strings.Repeat("0", units-len(frac))
	whole = strings.TrimLeft(whole, "0")
	if len(whole)+units > 18 {
		return 0, invalid(field, "too large")
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if whole+frac == "" {
		n, err = 0, nil
	}
	if err != nil || n > maxMinorUnits {
		return 0, invalid(field, "too large")
	}
	if n == 0 {
		return 0, invalid(field, "must be more than 0")
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatAmount writes minor units as a decimal string: 10050 with 2 units
// is "100.50".
func formatAmount(minor int64, units int) string {
	s := strconv.FormatInt(minor, 10)
	if units == 0 {
		return s
	}
	if len(s) <= units {
		s = strings.Repeat("0", units-len(s)+1) + s
	}
	return s[:len(s)-units] + "." + s[len(s)-units:]
}
