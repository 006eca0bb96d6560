package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// hashSuffixEmpty ends every encoded record before its hash is filled in.
var hashSuffixEmpty = []byte(`"hash":""}`)

// hashHexLen is the length of a hex SHA-256 digest.
const hashHexLen = sha256.Size * 2

// encodeRecord marshals r with an empty hash, computes the hash, stores it in
// r.Hash and returns the final line including the trailing newline.
func encodeRecord(r *Record) ([]byte, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	if !bytes.HasSuffix(b, hashSuffixEmpty) {
		return nil, fmt.Errorf("audit: encode record: hash is not the last field")
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(b)+hashHexLen+1)
	line = append(line, b[:len(b)-2]...) // drop `"}`, keep the opening quote
	line = append(line, h...)
	line = append(line, '"', '}', '\n')
	r.Hash = h
	return line, nil
}

// lineHash recomputes the hash of a stored line (without newline) and
// returns it together with the hash stored in the line. ok is false when the
// line does not end with a well-formed hash field.
func lineHash(line []byte) (computed, stored string, ok bool) {
	// line = prefix + `"hash":"` + 64 hex + `"}`
	const tail = 2 // `"}`
	const key = `"hash":"`
	if len(line) < len(key)+hashHexLen+tail || !bytes.HasSuffix(line, []byte(`"}`)) {
		return "", "", false
	}
	hEnd := len(line) - tail
	hStart := hEnd - hashHexLen
	if !bytes.Equal(line[hStart-len(key):hStart], []byte(key)) {
		return "", "", false
	}
	stored = string(line[hStart:hEnd])
	if _, err := hex.DecodeString(stored); err != nil {
		return "", "", false
	}
	h := sha256.New()
	h.Write(line[:hStart])
	h.Write([]byte(`"}`))
	return hex.EncodeToString(h.Sum(nil)), stored, true
}

// parseLine decodes a stored line. It returns an error when the line is not
// a JSON object that decodes into a Record with a seq.
func parseLine(line []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("audit: invalid JSON: %w", err)
	}
	if r.Seq == 0 {
		return nil, fmt.Errorf("audit: record has no seq")
	}
	return &r, nil
}

// checkLine parses a line and verifies its own hash. It returns the record,
// whether the hash matches, and a parse error when the line is no record.
func checkLine(line []byte) (r *Record, hashOK bool, err error) {
	r, err = parseLine(line)
	if err != nil {
		return nil, false, err
	}
	computed, stored, ok := lineHash(line)
	return r, ok && computed == stored && stored == r.Hash, nil
}
