package redact

import (
	"math/rand/v2"
	"testing"
)

// referenceFacts is textFacts as it was: every fact, one loop over every
// byte. TestTextFactsEqualReference holds the run-skipping textFacts to it.
func referenceFacts(b []byte) int {
	f := 0
	run, digit := 0, false
	arun, adigit := 0, false
	frun, hrun := 0, 0
	for _, c := range b {
		k := factBytes[c]
		if k&fbHex != 0 {
			if hrun++; hrun >= 32 {
				f |= factHex32
			}
		} else {
			hrun = 0
		}
		if k&fbFormat != 0 {
			if frun++; frun >= 16 {
				f |= factFormat16
			}
		} else {
			frun = 0
		}
		if k&fbAlnum != 0 {
			arun++
			adigit = adigit || k&fbDigit != 0
			if arun >= 16 && adigit {
				f |= factAlnum16
			}
			if arun >= 24 {
				f |= factAlnum24
			}
		} else {
			arun, adigit = 0, false
		}
		if k&fbToken != 0 {
			run++
			digit = digit || k&fbDigit != 0
			if run >= 16 && digit {
				f |= factLongToken
			}
		} else {
			run, digit = 0, false
		}
		if k&fbAssign != 0 {
			f |= factAssign
		}
		if k&fbQuery != 0 {
			f |= factQuery
		}
	}
	return f
}

func TestTextFactsEqualReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 29))
	const alpha = "abcdefXYZ0123456789+/_=-.~!@#$%^&*:?& \n\t\"'"
	all := factAssign | factQuery | factLongToken | factAlnum16 | factFormat16 | factHex32 | factAlnum24
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(120))
		for k := range b {
			// Runs of one class now and then, so the long-run facts occur.
			if k > 0 && rng.IntN(4) > 0 {
				b[k] = "0123456789abcdef"[rng.IntN(16)]
				continue
			}
			b[k] = alpha[rng.IntN(len(alpha))]
		}
		if got, want := textFacts(b, all), referenceFacts(b); got != want {
			t.Fatalf("%q: textFacts %b, reference %b", b, got, want)
		}
		for _, need := range []int{factAssign, factHex32, factAlnum24 | factQuery, factFormat16} {
			if got, want := textFacts(b, need)&need, referenceFacts(b)&need; got != want {
				t.Fatalf("%q need %b: textFacts %b, reference %b", b, need, got, want)
			}
		}
	}
}
