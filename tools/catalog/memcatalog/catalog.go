package memcatalog

import (
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"

	"bytes"
	"crypto/sha1" //nolint:gosec // etags and v5-style ids, not security
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultNamespace is the namespace given to entities that name none.
const DefaultNamespace = "default"

// DefaultMaxRecorded is how many requests a Catalog remembers by default.
const DefaultMaxRecorded = 10000

// ErrInvalidEntity is wrapped by the errors New returns for an entity that
// Backstage would refuse to ingest.
var ErrInvalidEntity = errors.New("memcatalog: invalid entity")

// Option configures a Catalog.
type Option func(*config)

type config struct {
	token       string
	maxRecorded int
	verbatim    bool
	maxAnswer   int64
	timeout     time.Duration
}

func newConfig(opts []Option) config {
	cfg := config{maxRecorded: DefaultMaxRecorded}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Verbatim keeps the metadata.uid, metadata.etag and relations that each
// entity carries, as a catalog read from Backstage has them, instead of
// assigning deterministic ids and etags and computing relations. Every
// entity must then carry a non-empty string uid and etag, unique uids, and
// a relations array (possibly empty) of {type, targetRef} objects; the rest
// is validated as without Verbatim, and string lists in spec are kept in
// the order given. Ordering by uid then matches the Backstage the entities
// came from. A Verbatim catalog can be updated with Catalog.Update.
func Verbatim() Option {
	return func(c *config) { c.verbatim = true }
}

// WithToken makes every request carry "Authorization: Bearer <token>"; other
// requests get 401 with Backstage's AuthenticationError body. The comparison
// is constant-time. An empty token leaves the catalog open.
func WithToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithoutRecording keeps no requests (Requests returns none): for a
// catalog that serves production traffic, such as the mirror's.
func WithoutRecording() Option {
	return func(c *config) { c.maxRecorded = -1 }
}

// WithMaxRecorded bounds how many requests Requests keeps (the oldest are
// dropped first). n <= 0 keeps the default, DefaultMaxRecorded.
func WithMaxRecorded(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxRecorded = n
		}
	}
}

// MaxAnswerBytes bounds the answer of each Go call (Query, GetByName,
// GetByRefs, Facets) as the catalog client's MaxResponseBytes bounds a
// response body: an answer whose encoding would exceed n bytes is refused
// with the client's error for it (catalog.TooLarge: ErrUnavailable and
// ErrResponseTooLarge), before its entities are copied. The size counted is
// that of the entities' encodings plus the answer's envelope, within a few
// bytes of Backstage's body for the same answer. n <= 0: no bound.
func MaxAnswerBytes(n int64) Option {
	return func(c *config) { c.maxAnswer = max(n, 0) }
}

// CallTimeout bounds each Go call as the catalog client's Timeout bounds a
// request: a call still running d after it started, or past its context's
// deadline, stops at its next step (after the index is read; every few
// entities copied) with the client's error for a request that timed out
// (catalog.TimedOut). d <= 0: only the context's deadline applies.
func CallTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, 0) }
}

// RecordedRequest is one request the handler saw.
type RecordedRequest struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path as received (including /api/catalog).
	Path string
	// RawQuery is the query string as received.
	RawQuery string
	// Query is RawQuery parsed.
	Query map[string][]string
	// Authorization is the Authorization header as received.
	Authorization string
	// Body is the request body as read (at most the body limit plus one byte).
	Body []byte
}

// Catalog is an immutable, indexed set of entities that answers like
// Backstage's catalog backend, through its HTTP handler or as Go calls
// (direct.go). It is safe for concurrent use.
type Catalog struct {
	token       []byte
	maxRecorded int
	verbatim    bool
	maxAnswer   int64         // MaxAnswerBytes; 0: none
	timeout     time.Duration // CallTimeout; 0: none

	entries []*entry          // ordered by metadata.uid
	route   walkRoute         // how pages walk their rows; tests pin it
	byRef   map[string]*entry // lowercase kind:namespace/name
	idx     *searchIndex

	mu       sync.Mutex
	recorded []RecordedRequest
}

type entry struct {
	pos  int32 // position in entries (uid order)
	ref  string
	uid  string
	etag string
	// json is the final entity encoded, never changed: the catalog keeps
	// each entity once, as this encoding; the search index, projections
	// and answers read it, and the index's strings are pieces of it.
	json string
}

// New validates and normalises entities (metadata.namespace defaults to
// "default"; deterministic metadata.uid and metadata.etag), computes relations
// as Backstage's built-in processor does, and indexes them.
//
// The input maps are not modified. Entities Backstage would reject (bad names,
// tags, missing required spec fields of built-in kinds, unparsable relation
// targets, duplicate refs, keys differing only in case) make New fail with an
// error wrapping ErrInvalidEntity.
//
// With Verbatim, uids, etags and relations are kept as given (see Verbatim).
func New(entities []map[string]any, opts ...Option) (*Catalog, error) {
	cfg := newConfig(opts)
	if cfg.verbatim {
		raws := make([]json.RawMessage, len(entities))
		for i, e := range entities {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("%w: entity #%d: not JSON-safe: %w", ErrInvalidEntity, i, err)
			}
			raws[i] = b
		}
		return NewJSON(raws, opts...)
	}
	c := newCatalog(cfg, len(entities))

	type pending struct {
		ref    string
		entity map[string]any
	}
	list := make([]pending, 0, len(entities))
	seen := make(map[string]int, len(entities))
	for i, raw := range entities {
		e, err := normalise(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: entity #%d: %w", ErrInvalidEntity, i, err)
		}
		ref := entityRef(e)
		if j, dup := seen[ref]; dup {
			return nil, fmt.Errorf("%w: entity #%d: %s duplicates entity #%d", ErrInvalidEntity, i, ref, j)
		}
		seen[ref] = i
		list = append(list, pending{ref: ref, entity: e})
	}

	rels := make(map[string]map[relation]struct{})
	for i, p := range list {
		if err := emitRelations(p.entity, func(source string, r relation) {
			m := rels[source]
			if m == nil {
				m = make(map[relation]struct{})
				rels[source] = m
			}
			m[r] = struct{}{}
		}); err != nil {
			return nil, fmt.Errorf("%w: entity #%d (%s): %w", ErrInvalidEntity, i, p.ref, err)
		}
	}

	for i, p := range list {
		e := p.entity
		rs := make([]relation, 0, len(rels[p.ref]))
		for r := range rels[p.ref] {
			rs = append(rs, r)
		}
		sort.Slice(rs, func(a, b int) bool {
			if rs[a].Type != rs[b].Type {
				return rs[a].Type < rs[b].Type
			}
			return rs[a].TargetRef < rs[b].TargetRef
		})
		out := make([]any, len(rs))
		for k, r := range rs {
			out[k] = map[string]any{"type": r.Type, "targetRef": r.TargetRef}
		}
		e["relations"] = out
		md := e["metadata"].(map[string]any)
		delete(md, "uid")
		etag, _ := md["etag"].(string)
		if _, ok := md["etag"]; !ok {
			b, err := encodeJSON(e)
			if err != nil {
				return nil, fmt.Errorf("memcatalog: entity #%d: %w", i, err)
			}
			sum := sha1.Sum(b) //nolint:gosec // an etag like Backstage's, not a security hash
			etag = hex.EncodeToString(sum[:])
			md["etag"] = etag
		}
		uid := uidFor(p.ref)
		md["uid"] = uid
		b, err := encodeJSON(e)
		if err != nil {
			return nil, fmt.Errorf("memcatalog: entity #%d: %w", i, err)
		}
		c.entries = append(c.entries, &entry{ref: p.ref, uid: uid, etag: etag, json: string(b)})
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func newCatalog(cfg config, n int) *Catalog {
	c := &Catalog{
		maxRecorded: cfg.maxRecorded,
		verbatim:    cfg.verbatim,
		maxAnswer:   cfg.maxAnswer,
		timeout:     cfg.timeout,
		byRef:       make(map[string]*entry, n),
	}
	if cfg.token != "" {
		c.token = []byte(cfg.token)
	}
	return c
}

// finish orders the entries by uid, numbers them and indexes them.
func (c *Catalog) finish() error {
	sort.Slice(c.entries, func(a, b int) bool { return c.entries[a].uid < c.entries[b].uid })
	for i, en := range c.entries {
		en.pos = int32(i) //nolint:gosec // bounded by the number of entities
		c.byRef[en.ref] = en
	}
	idx, err := buildIndex(c.entries)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEntity, err)
	}
	c.idx = idx
	return nil
}

// Len is the number of entities in the catalog.
func (c *Catalog) Len() int { return len(c.entries) }

// Requests returns a copy of the requests seen so far, oldest first.
func (c *Catalog) Requests() []RecordedRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]RecordedRequest, len(c.recorded))
	copy(out, c.recorded)
	return out
}

// Handler serves the catalog read API under /api/catalog.
func (c *Catalog) Handler() http.Handler { return http.HandlerFunc(c.serve) }

func (c *Catalog) record(r RecordedRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recorded) >= c.maxRecorded {
		n := copy(c.recorded, c.recorded[len(c.recorded)-c.maxRecorded+1:])
		c.recorded = c.recorded[:n]
	}
	c.recorded = append(c.recorded, r)
}

// uidFor derives a stable UUID-shaped id (version 5 layout) from a ref.
func uidFor(ref string) string {
	sum := sha1.Sum([]byte("memcatalog:" + ref)) //nolint:gosec // UUID v5 layout uses SHA-1; an id, not a security hash
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x50
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// encodeJSON encodes like JSON.stringify: compact, no HTML escaping.
// Object keys come out sorted.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("memcatalog: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// entityRef is the lowercase kind:namespace/name of a normalised entity.
func entityRef(e map[string]any) string {
	r, _ := catalog.RefOf(e)
	return r.Key()
}

var (
	reKind    = regexp.MustCompile(`^[a-zA-Z][a-z0-9A-Z]*$`)
	reName    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	reDNS     = regexp.MustCompile(`^[a-z0-9]+(?:-+[a-z0-9]+)*$`)
	reTag     = regexp.MustCompile(`^[a-z0-9+#]+(-[a-z0-9+#]+)*$`)
	reVersion = regexp.MustCompile(`^[a-z0-9A-Z]+$`)
)

func validName(s string) bool { return len(s) >= 1 && len(s) <= 63 && reName.MatchString(s) }
func validDNSLabel(s string) bool {
	return len(s) >= 1 && len(s) <= 63 && reDNS.MatchString(s)
}
func validDNSSubdomain(s string) bool {
	if len(s) < 1 || len(s) > 253 {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if !validDNSLabel(p) {
			return false
		}
	}
	return true
}

func validPrefixed(s string, prefix, suffix func(string) bool) bool {
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 1:
		return suffix(parts[0])
	case 2:
		return prefix(parts[0]) && suffix(parts[1])
	}
	return false
}

// normalise deep-copies an entity into plain JSON values and checks it the way
// Backstage's envelope, metadata and built-in kind validators do.
func normalise(raw map[string]any) (map[string]any, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("not JSON-safe: %w", err)
	}
	e, err := decodeEntity(b)
	if err != nil {
		return nil, err
	}
	delete(e, "relations")
	if err := validate(e, true); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeEntity decodes one JSON object, numbers kept as json.Number.
func decodeEntity(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var e map[string]any
	if err := dec.Decode(&e); err != nil || e == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return e, nil
}

// validate checks a decoded entity as Backstage's envelope, metadata and
// built-in kind validators do, defaulting metadata.namespace; with
// sortLists it sorts the spec string lists as Backstage's processor does
// before storing. Relations must have been removed or checked already.
func validate(e map[string]any, sortLists bool) error {
	for k := range e {
		switch k {
		case "apiVersion", "kind", "metadata", "spec", "relations", "status":
		default:
			return fmt.Errorf("unknown root field %q", k)
		}
	}
	av, _ := e["apiVersion"].(string)
	if !validPrefixed(av, validDNSSubdomain, func(s string) bool {
		return len(s) >= 1 && len(s) <= 63 && reVersion.MatchString(s)
	}) {
		return fmt.Errorf("invalid apiVersion %q", e["apiVersion"])
	}
	kind, _ := e["kind"].(string)
	if len(kind) < 1 || len(kind) > 63 || !reKind.MatchString(kind) {
		return fmt.Errorf("invalid kind %q", e["kind"])
	}
	md, ok := e["metadata"].(map[string]any)
	if !ok {
		return fmt.Errorf("metadata must be an object")
	}
	name, _ := md["name"].(string)
	if !validName(name) {
		return fmt.Errorf("invalid metadata.name %q", md["name"])
	}
	if ns, present := md["namespace"]; !present {
		md["namespace"] = DefaultNamespace
	} else if s, _ := ns.(string); !validDNSLabel(s) {
		return fmt.Errorf("invalid metadata.namespace %q", ns)
	}
	if v, present := md["labels"]; present {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("metadata.labels must be an object")
		}
		for k, lv := range m {
			s, ok := lv.(string)
			if !validPrefixed(k, validDNSSubdomain, validName) || !ok || (s != "" && !validName(s)) {
				return fmt.Errorf("invalid label %q", k)
			}
		}
	}
	if v, present := md["annotations"]; present {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("metadata.annotations must be an object")
		}
		for k, av := range m {
			if _, ok := av.(string); !ok || !validPrefixed(k, validDNSSubdomain, validName) {
				return fmt.Errorf("invalid annotation %q", k)
			}
		}
	}
	if v, present := md["tags"]; present {
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("metadata.tags must be an array")
		}
		for _, t := range arr {
			s, _ := t.(string)
			if len(s) < 1 || len(s) > 63 || !reTag.MatchString(s) {
				return fmt.Errorf("invalid tag %q", t)
			}
		}
	}
	for _, f := range []string{"title", "description"} {
		if v, present := md[f]; present {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("metadata.%s must be a string", f)
			}
		}
	}
	if err := validateKindSpec(e, av, kind); err != nil {
		return err
	}
	// Backstage's built-in processor sorts these string lists before storing.
	if spec, ok := e["spec"].(map[string]any); ok && sortLists {
		for _, f := range []string{"providesApis", "consumesApis", "dependsOn", "dependencyOf", "memberOf", "children", "members"} {
			arr, ok := spec[f].([]any)
			if !ok || len(arr) == 0 {
				continue
			}
			strs := make([]string, 0, len(arr))
			for _, v := range arr {
				s, ok := v.(string)
				if !ok {
					break
				}
				strs = append(strs, s)
			}
			if len(strs) != len(arr) {
				continue
			}
			slices.Sort(strs)
			for i, s := range strs {
				arr[i] = s
			}
		}
	}
	return nil
}

// kindSchemas lists, for the built-in kinds, the spec fields their JSON
// schemas require or type: 's' = non-empty string, 'a' = array; upper case
// means required.
var kindSchemas = map[string]map[string]byte{
	"Component": {"type": 'S', "lifecycle": 'S', "owner": 'S', "system": 's', "subcomponentOf": 's', "providesApis": 'a', "consumesApis": 'a', "dependsOn": 'a'},
	"API":       {"type": 'S', "lifecycle": 'S', "owner": 'S', "definition": 'S', "system": 's'},
	"Resource":  {"type": 'S', "owner": 'S', "dependsOn": 'a', "system": 's'},
	"System":    {"owner": 'S', "domain": 's', "type": 's'},
	"Domain":    {"owner": 'S', "subdomainOf": 's', "type": 's'},
	"Group":     {"type": 'S', "children": 'A', "parent": 's', "members": 'a'},
	"User":      {"memberOf": 'A'},
	"Location":  {"type": 's', "target": 's', "targets": 'a'},
}

func validateKindSpec(e map[string]any, apiVersion, kind string) error {
	if apiVersion != "backstage.io/v1alpha1" && apiVersion != "backstage.io/v1beta1" {
		return nil
	}
	schema, ok := kindSchemas[kind]
	if !ok {
		return nil
	}
	spec, ok := e["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: spec must be an object", kind)
	}
	for f, t := range schema {
		v, present := spec[f]
		if !present {
			if t == 'S' || t == 'A' {
				return fmt.Errorf("%s: spec.%s is required", kind, f)
			}
			continue
		}
		switch t {
		case 's', 'S':
			if s, ok := v.(string); !ok || s == "" {
				return fmt.Errorf("%s: spec.%s must be a non-empty string", kind, f)
			}
		case 'a', 'A':
			if _, ok := v.([]any); !ok {
				return fmt.Errorf("%s: spec.%s must be an array", kind, f)
			}
		}
	}
	return nil
}
