package redact

import (
	"bytes"
	"strings"
	"unsafe"
)

// The assigned-value layer (rule generic-assigned): a value of high
// randomness assigned directly to a name that says nothing about
// credentials (wandb=V, FINDL: V, export ACME="V", --acme V). The
// generic context layer starts from a credential word; a vendor's key is
// often written under the vendor's name alone. This layer starts from the
// assignment's shape instead and asks more of the value to make up for the
// missing word: 32 characters or more, letters and digits mixed, not hex
// (commit ids and digests), no documentation sequence, and the entropy a
// random string of its alphabet and length has. Names that hold random
// values that are no secret (hash, digest, integrity, commit, id, nonce,
// signature, certificate, …) are skipped (assignedNameOK).

// assignedMin is the shortest value the layer judges: without a credential
// word, shorter random-looking values are ids and hashes too often.
const assignedMin = 32

// findAssigned calls found for each assignment of text whose value the
// layer redacts, with the offsets of name and value (ns, ne, vs, ve). It
// reads only runs of 32 or more value bytes (the only places a value can
// be), found by looking at every 32nd byte, and parses the name leftwards
// from there.
func findAssigned(text []byte, found func(m [4]int)) {
	// Every run of 32 or more holds one of the bytes at 31, 63, 95, …: look
	// at those, and read a run only around one that is a value byte.
	for p := assignedMin - 1; p < len(text); {
		if !contextValueBytes[text[p]] ||
			// A run of 32 holding p holds p-16..p or p..p+16 whole.
			!(p >= 16 && contextValueBytes[text[p-16]] && contextValueBytes[text[p-8]]) &&
				!(p+16 < len(text) && contextValueBytes[text[p+16]] && contextValueBytes[text[p+8]]) {
			p += assignedMin
			continue
		}
		i := p
		for i > 0 && contextValueBytes[text[i-1]] {
			i--
		}
		j := p + 1
		for j < len(text) && contextValueBytes[text[j]] {
			j++
		}
		if j-i >= assignedMin {
			if m, ok := assignedRun(text, i, j); ok {
				found(m)
			}
		}
		p = j + assignedMin
	}
}

// assignedRun judges the run of value bytes text[a:b]: a name glued to its
// value by '=' inside the run (ZORBIT=V, --zorbit=V, note=zorbit=V), or a
// value that is the whole run with its name and separator before it
// (zorbit: V, "zorbit": "V", zorbit => 'V', a line "zorbit V").
func assignedRun(text []byte, a, b int) ([4]int, bool) {
	start := a
	for n := 0; n < 4 && start < b; n++ {
		e := start + bytes.IndexByte(text[start:b], '=')
		if e < start || b-e-1 < assignedMin {
			break
		}
		if isAlnumByte(text[e+1]) {
			if m, ok := assignedPair(text, start, e, e+1, b); ok {
				return m, true
			}
		}
		start = e + 1
	}
	// The whole run is the value: what stands before it.
	if !isAlnumByte(text[a]) {
		return [4]int{}, false
	}
	k := a
	q := byte(0)
	if k > 0 && (text[k-1] == '"' || text[k-1] == '\'' || text[k-1] == '`') {
		q = text[k-1]
		k--
	}
	k0 := k
	for k > 0 && (text[k-1] == ' ' || text[k-1] == '\t') {
		k--
	}
	sep := false
	switch {
	case k >= 2 && (text[k-2] == ':' && text[k-1] == '=' || text[k-2] == '=' && text[k-1] == '>'):
		k -= 2
		sep = true
	case k >= 1 && (text[k-1] == ':' || text[k-1] == '='):
		if text[k-1] == ':' && k >= 2 && text[k-2] == ':' {
			return [4]int{}, false // a scope (a::b), not an assignment
		}
		k--
		sep = true
	}
	if sep {
		ve := assignedEnd(text, a, b, q)
		if ve < 0 {
			return [4]int{}, false
		}
		for k > 0 && (text[k-1] == ' ' || text[k-1] == '\t') {
			k--
		}
		nq := byte(0)
		if k > 0 && (text[k-1] == '"' || text[k-1] == '\'') {
			nq = text[k-1]
			k--
		}
		ns := k
		for ns > 0 && k-ns < 64 && isNameByte(text[ns-1]) {
			ns--
		}
		if nq != 0 {
			if ns == 0 || text[ns-1] != nq {
				return [4]int{}, false
			}
			ns--
		}
		return assignedPair(text, ns, k+boolInt(nq != 0), a, ve)
	}
	if q != 0 || k == k0 {
		return [4]int{}, false
	}
	// Blanks alone: a line (or a URL query's value) that is only a name
	// and a value ("zorbit V").
	return assignedSpaced(text, k, a, b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// assignedEnd returns where a value starting the run text[a:b] ends, or -1
// when it runs on into something else: trailing punctuation of prose or
// code is not part of it; a quoted value ends at its quote.
func assignedEnd(text []byte, a, b int, q byte) int {
	ve := b
	for ve > a && strings.IndexByte(".,;:)]}", text[ve-1]) >= 0 {
		ve--
	}
	if q != 0 {
		if ve >= len(text) || text[ve] != q {
			return -1
		}
		return ve
	}
	if ve < len(text) && ve == b && !isBlankByte(text[ve]) && strings.IndexByte(`,;)]}"'&`, text[ve]) < 0 {
		return -1 // runs on into something else (a URL, an address, code)
	}
	return ve
}

// assignedPair judges the name text[ns:ne] (quotes and a flag's dashes
// included) and the value text[vs:ve]: the name must be one identifier at
// the start of a line, after blanks or after one of {,;([= (not a URL
// query's parameter: ?state=V, &code=V are one-time values that
// url-query-secret judges by their names).
func assignedPair(text []byte, ns, ne, vs, ve int) ([4]int, bool) {
	if ne <= ns || vs >= len(text) || !isAlnumByte(text[vs]) {
		return [4]int{}, false
	}
	if ns > 0 && !isBlankByte(text[ns-1]) && strings.IndexByte("{,;([=", text[ns-1]) < 0 {
		return [4]int{}, false
	}
	ve = assignedEnd(text, vs, ve, 0)
	if ve-vs < assignedMin {
		return [4]int{}, false
	}
	name := bytes.Trim(text[ns:ne], `"'-`)
	if len(name) == 0 || len(name) > 64 || !isAlphaByte(name[0]) {
		return [4]int{}, false
	}
	for _, c := range name {
		if !isNameByte(c) {
			return [4]int{}, false
		}
	}
	if !assignedBytesOK(text[vs:ve]) || !assignedNameOK(name) || !assignedValueOK(bytesView(text[vs:ve])) {
		return [4]int{}, false
	}
	return [4]int{ns, ne, vs, ve}, true
}

// assignedSpaced judges a value text[vs:b] that follows a name and blanks
// ending at ke: the name must start its line (after indentation) or a URL
// query's value, and the value must end it ("zorbit V", "  ACME V",
// ?note=zorbit+V decoded).
func assignedSpaced(text []byte, ke, vs, b int) ([4]int, bool) {
	ns := ke
	for ns > 0 && ke-ns <= 40 && (isWordByte(text[ns-1]) || text[ns-1] == '.' || text[ns-1] == '-') {
		ns--
	}
	if ns == ke || ke-ns > 40 || !isAlphaByte(text[ns]) {
		return [4]int{}, false
	}
	ls := ns
	for ls > 0 && (text[ls-1] == ' ' || text[ls-1] == '\t') {
		ls--
	}
	switch {
	case ls == 0 || text[ls-1] == '\n' || text[ls-1] == '\r':
	case ls == ns && text[ls-1] == '=' && queryParam(text, ls-1):
	default:
		return [4]int{}, false
	}
	ve := b
	if k := skipBlanks(text, ve); k < len(text) && text[k] != '\n' && text[k] != '\r' && !(text[k] == '&' && ls == ns) {
		return [4]int{}, false // more follows on the line: prose, a list
	}
	if ve-vs < assignedMin || ve-vs > 512 || !isAlnumByte(text[vs]) {
		return [4]int{}, false
	}
	if !assignedBytesOK(text[vs:ve]) || !assignedNameOK(text[ns:ke]) || !assignedValueOK(bytesView(text[vs:ve])) {
		return [4]int{}, false
	}
	return [4]int{ns, ke, vs, ve}, true
}

// queryParam reports whether the '=' at text[e] ends a URL query
// parameter's name (?note=, &note=).
func queryParam(text []byte, e int) bool {
	k := e
	for k > 0 && e-k < 64 && isNameByte(text[k-1]) {
		k--
	}
	return k < e && k > 0 && (text[k-1] == '?' || text[k-1] == '&')
}

// assignedBytesOK is the cheap part of assignedValueOK, read on the bytes
// before anything is allocated: a letter and a digit, and a byte that is
// no hex digit.
func assignedBytesOK(v []byte) bool {
	letter, digit, nonHex := false, false, false
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
			nonHex = nonHex || !isHex(c)
		case c != '-':
			nonHex = true
		}
	}
	return letter && digit && nonHex
}

// bytesView returns b as a string without copying it: the value is only
// read while the text is (never kept, never written).
func bytesView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b)) //nolint:gosec // read-only view of bytes the caller does not change
}

func isAlphaByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// assignedValueOK reports whether v, directly assigned to a name, is random
// enough to be a credential with no credential word beside it: the generic
// context layer's shape in weak context (contextValueOK), 32 characters or
// more, letters and digits both, not hex, and the entropy of a random
// string of its length (about 4.3 bits at 32 characters).
func assignedValueOK(v string) bool {
	if len(v) < assignedMin || isHexString(v) || compound(v) {
		return false
	}
	lower, upper, digit, _ := charClasses(v)
	if digit == 0 || lower+upper == 0 {
		return false
	}
	if isUUID(v) || camelWords(v) || shannon(v) < 4.2 {
		return false
	}
	if hasSequence(v) {
		// A documentation sequence beside a random run of 24 or more
		// (bu9JFVJtII3FINL1rOKcNpveXD4hSMtS…defghijklmnop…): a key padded
		// with a stand-in; a stand-in alone, or a real-looking value with
		// a short run overwritten, is kept.
		if _, longest := sequenceResidue(v); longest < 24 || !contextValueOK(v, nil, true) {
			return false
		}
	} else if !contextValueOK(v, nil, false) {
		return false
	}
	return true
}

// compound reports whether v is made of parts no single random token
// has: an '=' before its end ("service-id=PCHK7Q2" is a pair; base64 pads
// with '=' only at the end), or both '.' and '/' ("pagerduty.com/x" is a
// host and a path; base64 has '/' but no '.', a JWT '.' but no '/').
//
// A '/' beside '-', '_' or '.' is a path too ("default/notification-
// worker-12345", an entity ref's namespace and name): base64 has '/' but
// none of those, base64url '-' and '_' but no '/'.
func compound(v string) bool {
	if i := strings.IndexByte(strings.TrimRight(v, "="), '='); i >= 0 {
		return true
	}
	return strings.IndexByte(v, '/') >= 0 && strings.ContainsAny(v, "._-")
}

// camelWords reports whether v reads as words written together
// ("ZorbitPaymentsGatewayProd2024", "payments_gateway_prod_cluster"): three
// or more letters in a word (a capital and lower-case letters, or one case)
// cover three quarters of it. A random value of 32 characters or more has
// few such runs.
func camelWords(v string) bool {
	covered := 0
	for i := 0; i < len(v); {
		j := i
		if v[j] >= 'A' && v[j] <= 'Z' {
			j++
			for j < len(v) && v[j] >= 'A' && v[j] <= 'Z' && (j+1 == len(v) || !(v[j+1] >= 'a' && v[j+1] <= 'z')) {
				j++ // an acronym ("HTTPServer": "HTTP")
			}
		}
		for j < len(v) && v[j] >= 'a' && v[j] <= 'z' {
			j++
		}
		if j-i >= 3 {
			covered += j - i
		}
		if j == i {
			j++
		}
		i = j
	}
	return 4*covered >= 3*len(v)
}

// nonSecretNames are the words of names whose values are random and public:
// digests, ids, versions, signatures of public artifacts, certificates and
// encoded content. A name holding one of them is not judged.
var nonSecretNames = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range [...]string{
		// digests and checksums (lockfiles, go.sum's h1:, SRI)
		"hash", "sha", "sha1", "sha256", "sha384", "sha512", "md5", "shasum", "digest", "checksum", "integrity", "h1", "hmac", "mac",
		// ids and positions (commit ids, request ids, page tokens)
		"commit", "rev", "revision", "id", "ids", "uuid", "guid", "uid", "oid", "kid", "etag", "ref", "version", "build",
		"serial", "trace", "traceparent", "span", "request", "correlation", "cursor", "page", "next", "continuation", "pagination",
		// public values of protocols (nonces, OAuth state, PKCE challenge, signatures of public artifacts)
		"nonce", "state", "challenge", "salt", "iv", "seed", "signature", "sig", "fingerprint", "thumbprint",
		// public keys and certificates (JWK members, SSH public keys, CA bundles)
		"public", "pub", "publickey", "cert", "certificate", "crt", "ca", "cabundle", "pem", "x5c", "x5t",
		"modulus", "exponent", "ssh", "rsa", "dss", "ecdsa", "ed25519",
		// encoded content and addresses
		"data", "base64", "b64", "blob", "image", "img", "icon", "logo", "avatar", "thumbnail", "favicon", "photo", "content",
		"body", "payload", "src", "url", "uri", "href", "path", "address", "addr", "wallet",
		// documentation
		"example", "sample", "name",
	} {
		m[w] = true
	}
	return m
}()

// assignedNameOK reports whether a name may hold a credential for the
// assigned-value layer: none of its words is one of nonSecretNames.
func assignedNameOK(name []byte) bool {
	if len(name) == 1 && strings.IndexByte("nexyNEXY", name[0]) >= 0 {
		return false // a JSON Web Key's public members: modulus, exponent, curve point
	}
	// The words of nameSegments, lower-cased into a buffer (no allocation:
	// every long run of a text asks).
	var buf [32]byte
	for i := 0; i < len(name); {
		var j int
		i, j = nameWord(name, i)
		if i == len(name) {
			break
		}
		if j-i <= len(buf) {
			for k, c := range name[i:j] {
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				buf[k] = c
			}
			if nonSecretNames[string(buf[:j-i])] {
				return false
			}
		}
		i = j
	}
	return true
}

// urlEncoded reports whether b holds percent- or form-encoding, the
// encodings whose decoded view generic-assigned reads (a value in a URL
// query: ?note=acme%3DV, ?note=acme+V); the backslash escapes of a quoted
// text it leaves to the keyword rules.
func urlEncoded(b []byte) bool {
	return bytes.IndexByte(b, '%') >= 0 || formEncoded(b)
}

// runAssigned appends the findings of generic-assigned in text (a decoded
// view when starts is non-nil, whose spans are mapped back through it).
func (r *Redactor) runAssigned(text []byte, starts []int, spans []span) []span {
	if r.assigned < 0 || len(text) < assignedMin+2 {
		return spans
	}
	findAssigned(text, func(m [4]int) {
		s, e := m[2], m[3]
		if r.allow[string(text[s:e])] {
			return
		}
		if starts != nil {
			s, e = starts[s], starts[e]
		}
		spans = append(spans, span{start: s, end: e, rule: r.assigned})
	})
	return spans
}
