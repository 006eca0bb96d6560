package redact

import (
	"bytes"
	"strings"
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

// findAssigned returns the assignments of text whose value the layer
// redacts, in the shape of FindAllSubmatchIndex for groups (name, secret).
func findAssigned(text []byte) [][]int {
	var out [][]int
	lastEnd := 0
	for off := 0; off < len(text); {
		k := bytes.IndexAny(text[off:], "=:")
		if k < 0 {
			break
		}
		p := off + k
		off = p + 1
		if p < lastEnd {
			continue
		}
		if m := parseAssigned(text, p); m != nil {
			out = append(out, m)
			lastEnd = m[1]
			off = m[1]
		}
	}
	// A line that is only a name and a value ("acme V").
	for ls := 0; ls < len(text); {
		le := bytes.IndexByte(text[ls:], '\n')
		if le < 0 {
			le = len(text)
		} else {
			le += ls
		}
		if le-ls >= assignedMin+2 && ls >= lastEnd {
			if m := parseSpaced(text, ls, le); m != nil {
				out = append(out, m)
			} else if q := bytes.IndexByte(text[ls:le], '?'); q >= 0 {
				// A URL query's values are text of their own
				// (?note=acme+V, decoded): each is read as a line.
				for ps := ls + q; ps < le; {
					pe := bytes.IndexByte(text[ps+1:le], '&')
					if pe < 0 {
						pe = le
					} else {
						pe += ps + 1
					}
					if eq := bytes.IndexByte(text[ps:pe], '='); eq > 0 && pe-ps-eq > assignedMin+2 {
						if m := parseSpaced(text, ps+eq+1, pe); m != nil {
							out = append(out, m)
						}
					}
					ps = pe
				}
			}
		}
		ls = le + 1
	}
	return out
}

// parseSpaced reads a line text[ls:le] that is one name, blanks and one
// value, and nothing else: "skrapp V", "  ACME V" (a config line of a
// vendor's name and its key).
func parseSpaced(text []byte, ls, le int) []int {
	ns := skipBlanks(text, ls)
	ne := ns
	for ne < le && (isWordByte(text[ne]) || text[ne] == '.' || text[ne] == '-') {
		ne++
	}
	if ne == ns || ne-ns > 40 || !isAlphaByte(text[ns]) || ne >= le || !isBlankByte(text[ne]) {
		return nil
	}
	vs := skipBlanks(text, ne)
	ve := vs
	for ve < le && isContextValueByte(text[ve]) {
		ve++
	}
	if ve-vs < assignedMin || ve-vs > 512 || !isAlnumByte(text[vs]) {
		return nil
	}
	if k := skipBlanks(text, ve); k < le && !(k+1 == le && text[k] == '\r') {
		return nil // more follows on the line: prose, a list
	}
	if !assignedNameOK(text[ns:ne]) || !assignedValueOK(string(text[vs:ve])) {
		return nil
	}
	return []int{ns, ve, ns, ne, vs, ve}
}

// parseAssigned reads NAME SEP VALUE around the separator at text[p] (':'
// or '='; also ':=', '=>'): NAME is one identifier, optionally quoted, at
// the start of a line, after blanks or after one of {,;([?& (a flag's
// dashes and an export are part of its line start); VALUE is one run of
// token bytes, optionally quoted, that ends where the token ends.
func parseAssigned(text []byte, p int) []int {
	// The value: after the separator's second byte, blanks and a quote.
	i := p + 1
	if i < len(text) && (text[p] == ':' && text[i] == '=' || text[p] == '=' && text[i] == '>') {
		i++
	}
	if text[p] == ':' && i < len(text) && text[i] == ':' {
		return nil // a scope (a::b), not an assignment
	}
	i = skipBlanks(text, i)
	q := byte(0)
	if i < len(text) && (text[i] == '"' || text[i] == '\'' || text[i] == '`') {
		q = text[i]
		i++
	}
	if len(text)-i < assignedMin || !isAlnumByte(text[i]) {
		return nil
	}
	ve := i
	for ve < len(text) && ve-i < 512 && isContextValueByte(text[ve]) {
		ve++
	}
	if ve-i < assignedMin {
		return nil
	}
	for ve > i && strings.IndexByte(".,;:)]}", text[ve-1]) >= 0 {
		ve--
	}
	if q != 0 {
		if ve >= len(text) || text[ve] != q {
			return nil
		}
	} else if ve < len(text) && !isBlankByte(text[ve]) && strings.IndexByte(`,;)]}"'`, text[ve]) < 0 {
		return nil // runs on into something else (a URL, an address, code)
	}
	// The name: one identifier before the separator, after blanks and a quote.
	ne := p
	for ne > 0 && (text[ne-1] == ' ' || text[ne-1] == '\t') {
		ne--
	}
	nq := byte(0)
	if ne > 0 && (text[ne-1] == '"' || text[ne-1] == '\'') {
		nq = text[ne-1]
		ne--
	}
	ns := ne
	for ns > 0 && ne-ns < 64 && (isWordByte(text[ns-1]) || text[ns-1] == '.' || text[ns-1] == '-') {
		ns--
	}
	if ns == ne || ne-ns >= 64 {
		return nil
	}
	if nq != 0 {
		if ns == 0 || text[ns-1] != nq {
			return nil
		}
		ns--
	}
	if ns > 0 && !isBlankByte(text[ns-1]) && strings.IndexByte("{,;([=", text[ns-1]) < 0 {
		// Part of a longer expression (a path, a call), or a URL's query
		// parameter (?state=V, &code=V: one-time values, judged by
		// url-query-secret by their names).
		return nil
	}
	name := bytes.Trim(text[ns:ne], `"'-`)
	if len(name) == 0 || !isAlphaByte(name[0]) || !assignedNameOK(name) {
		return nil
	}
	if !assignedValueOK(string(text[i:ve])) {
		return nil
	}
	return []int{ns, ve, ns, ne, i, ve}
}

func isAlphaByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// assignedValueOK reports whether v, directly assigned to a name, is random
// enough to be a credential with no credential word beside it: the generic
// context layer's shape in weak context (contextValueOK), 32 characters or
// more, letters and digits both, not hex, and the entropy of a random
// string of its length (about 4.3 bits at 32 characters).
func assignedValueOK(v string) bool {
	if len(v) < assignedMin || isHexString(v) {
		return false
	}
	lower, upper, digit, _ := charClasses(v)
	if digit == 0 || lower+upper == 0 {
		return false
	}
	if isUUID(v) || camelWords(v) {
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
	return shannon(v) >= 4.2
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
	for _, s := range nameSegments(name) {
		if nonSecretNames[s] {
			return false
		}
	}
	return true
}

// runAssigned appends the findings of generic-assigned in text (a decoded
// view when starts is non-nil, whose spans are mapped back through it).
func (r *Redactor) runAssigned(text []byte, starts []int, spans []span) []span {
	if r.assigned < 0 || len(text) < assignedMin+2 {
		return spans
	}
	for _, m := range findAssigned(text) {
		s, e := m[4], m[5]
		if r.allow[string(text[s:e])] {
			continue
		}
		if starts != nil {
			s, e = starts[s], starts[e]
		}
		spans = append(spans, span{start: s, end: e, rule: r.assigned})
	}
	return spans
}
