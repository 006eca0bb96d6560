package corpus

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
)

const (
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars = "0123456789"
	base62     = digitChars + upperChars + lowerChars
	base64url  = base62 + "-_"
	base64std  = upperChars + lowerChars + digitChars + "+/"
	hexChars   = "0123456789abcdef"
	base32aws  = upperChars + "234567"
)

// rnd draws random strings from a seeded generator.
type rnd struct{ r *rand.Rand }

func (g rnd) str(charset string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = charset[g.r.IntN(len(charset))]
	}
	return string(b)
}

func (g rnd) intn(n int) int { return g.r.IntN(n) }

func (g rnd) pick(list ...string) string { return list[g.r.IntN(len(list))] }

func (g rnd) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.IntN(256)) //nolint:gosec // IntN(256) is 0..255
	}
	return b
}

// password returns a random password of mixed classes that is URL-safe.
func (g rnd) password() string {
	n := 12 + g.intn(14)
	for {
		s := g.str(base62+"-_.~!*", n)
		if strings.ContainsAny(s, digitChars) && strings.ContainsAny(s, upperChars) && strings.ContainsAny(s, lowerChars) {
			return s
		}
	}
}

// Base62CRC encodes the CRC-32 of s in base62, left-padded to 6 characters, as
// used for the checksum tail of GitHub and npm tokens.
func Base62CRC(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out)
}

// checksummed returns prefix + 30 random base62 characters + their CRC-32 in base62.
func (g rnd) checksummed(prefix string) string {
	body := g.str(base62, 30)
	return prefix + body + Base62CRC(body)
}

// ValidChecksum reports whether a ghp_/gho_/ghu_/ghs_/ghr_/npm_ token of 36
// characters after its prefix carries a valid base62 CRC-32 tail.
func ValidChecksum(token string) bool {
	i := strings.IndexByte(token, '_')
	if i < 0 || len(token)-i-1 != 36 {
		return false
	}
	body := token[i+1 : len(token)-6]
	return Base62CRC(body) == token[len(token)-6:]
}

func (g rnd) jwt() string {
	enc := base64.RawURLEncoding
	alg := g.pick("HS256", "RS256", "ES256")
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(map[string]any{
		"sub": fmt.Sprintf("user:default/%s", g.pick("jdoe", "asmith", "build-bot", "svc-catalog")),
		"iss": g.pick("https://auth.acme.example", "backstage", "https://login.microsoftonline.com/tenant/v2.0"),
		"iat": 1700000000 + g.intn(50000000), "exp": 1760000000 + g.intn(50000000),
		"ent": []string{"group:default/" + g.pick("platform", "payments", "search")},
	})
	sigLen := 32
	if alg != "HS256" {
		sigLen = 64 + 192*g.intn(2)
	}
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(g.bytes(sigLen))
}

// pem returns a plausible PEM block; nl separates lines (e.g. "\n", "\n    " for
// a YAML block scalar, or a literal `\n`).
func (g rnd) pem(kind, nl string) string {
	var label string
	var der []byte
	var headers []string
	width := 64
	switch kind {
	case "rsa":
		label = "RSA PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00}, g.bytes(1180)...)
	case "rsa-encrypted":
		label = "RSA PRIVATE KEY"
		headers = []string{"Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-256-CBC," + strings.ToUpper(g.str(hexChars, 32)), ""}
		der = g.bytes(1200)
	case "ec":
		label = "EC PRIVATE KEY"
		der = append([]byte{0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20}, g.bytes(112)...)
	case "dsa":
		label = "DSA PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x01, 0xbb, 0x02, 0x01, 0x00}, g.bytes(440)...)
	case "openssh":
		label = "OPENSSH PRIVATE KEY"
		der = append([]byte("openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none"), g.bytes(360)...)
		width = 70
	case "pgp":
		label = "PGP PRIVATE KEY BLOCK"
		headers = []string{"Version: GnuPG v2", ""}
		der = append([]byte{0x95, 0x03, 0xc6, 0x04}, g.bytes(900)...)
	case "pkcs8":
		label = "PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}, g.bytes(1190)...)
	case "encrypted":
		label = "ENCRYPTED PRIVATE KEY"
		der = append([]byte{0x30, 0x82, 0x05, 0x0c, 0x30, 0x40, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}, g.bytes(1280)...)
	}
	body := base64.StdEncoding.EncodeToString(der)
	lines := []string{"-----BEGIN " + label + "-----"}
	lines = append(lines, headers...)
	for len(body) > width {
		lines = append(lines, body[:width])
		body = body[width:]
	}
	lines = append(lines, body)
	if kind == "pgp" {
		lines = append(lines, "="+g.str(base64std, 4))
	}
	lines = append(lines, "-----END "+label+"-----")
	return strings.Join(lines, nl)
}

func pemType(kind string) string {
	switch kind {
	case "rsa", "rsa-encrypted":
		return "private-key-rsa"
	default:
		return "private-key-" + kind
	}
}
