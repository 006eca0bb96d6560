package redact

import (
	"bytes"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"unsafe"
)

// keyInfo is what the redactor knows about a key (a JSON key, an annotation
// name, a facet path): the rules its words call for and what its name says.
// Keys repeat (a page of 200 entities holds under a hundred distinct keys),
// so a key that holds nothing to redact is judged once and kept in a small
// cache. A keyInfo is never changed once made.
type keyInfo struct {
	name     []byte
	set      ruleSet // prefilter of the name
	clean    bool    // the name itself holds no secret and no invisible Unicode
	secret   bool    // isSecretName
	password bool    // isPasswordName
	slot     bool    // isPasswordSlot
	token    bool    // isTokenName
	strong   bool    // strongKeyName: a documentation sequence under it is redacted
	webhook  bool    // isWebhookName
	auth     bool    // the name is "auth" (a Docker config entry)
}

// Key cache bounds: a two-way set-associative table, so memory stays fixed
// whatever the input; a key whose two slots are taken replaces the second.
const (
	keyCacheSlots  = 4096
	keyCacheMaxLen = 128
)

type keyCache struct {
	seed  maphash.Seed
	slots [keyCacheSlots]atomic.Pointer[keyInfo]
}

// keyOf is keyInfo for an optional key: nil when there is none.
func (r *Redactor) keyOf(key []byte) *keyInfo {
	if len(key) == 0 {
		return nil
	}
	return r.keyInfo(key)
}

// keyInfo returns the facts about key, from the cache when it is there. Only
// clean keys are cached: a key that holds a secret is never kept.
func (r *Redactor) keyInfo(key []byte) *keyInfo {
	if len(key) > keyCacheMaxLen {
		return r.judgeKey(key)
	}
	h := maphash.Bytes(r.keys.seed, key) % keyCacheSlots
	a, b := &r.keys.slots[h], &r.keys.slots[h^1]
	if ki := a.Load(); ki != nil && bytes.Equal(ki.name, key) {
		return ki
	}
	if ki := b.Load(); ki != nil && bytes.Equal(ki.name, key) {
		return ki
	}
	ki := r.judgeKey(key)
	if ki.clean {
		if a.Load() == nil {
			a.Store(ki)
		} else {
			b.Store(ki)
		}
	}
	return ki
}

func (r *Redactor) judgeKey(key []byte) *keyInfo {
	name := string(key)
	ki := &keyInfo{
		name:     []byte(name),
		set:      r.prefilter(key),
		secret:   isSecretName(name),
		password: isPasswordName(name),
		slot:     isPasswordSlot(name),
		token:    isTokenName(name),
		strong:   strongKeyName(key),
		webhook:  isWebhookName(name),
		auth:     strings.EqualFold(name, "auth"),
	}
	clean, n := Sanitize(name)
	ki.clean = n == 0 && clean == name && len(r.detect(key, nil)) == 0
	return ki
}

// view returns the bytes of s without copying them. The redactor only reads
// its input (apply builds a new slice), so the view is never written to.
func view(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s)) //nolint:gosec // read-only view of an immutable string
}
