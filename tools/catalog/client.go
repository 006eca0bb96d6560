// Package catalog is a typed client for Backstage's catalog REST API
// (<baseUrl>/api/catalog): queries with filters, field projections and
// cursors, lookups by name and by refs, and facets.
//
// The client always authenticates with the server's own credential (a
// TokenSource), never with an end user's token. Every call has a timeout
// and a cap on the response size, and failures map to typed errors
// (ErrNotFound, ErrNotAllowed, ErrBadInput, ErrRateLimited,
// ErrUnavailable) whose messages never echo the upstream body.
//
//	c, _ := catalog.New(catalog.Config{BaseURL: "http://localhost:7007", Token: catalog.StaticToken(tok)})
//	res, _ := c.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}}, Limit: 20})
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 16 << 20
	// MaxRefsPerBatch and MaxRefsBodyBytes bound one by-refs request.
	MaxRefsPerBatch  = 1000
	MaxRefsBodyBytes = 90 << 10
)

// Config configures a Client. Only BaseURL and Token are required.
type Config struct {
	// BaseURL of the Backstage backend, e.g. http://localhost:7007; the
	// client appends /api/catalog.
	BaseURL string
	// Token is the server's own Backstage credential (externalAccess).
	Token TokenSource
	// Timeout bounds each HTTP request (default 10s).
	Timeout time.Duration
	// MaxResponseBytes caps a response body (default 16 MiB).
	MaxResponseBytes int64
	// HTTPClient is used for requests; its Timeout is not relied upon.
	// Nil means a dedicated client with sane transport limits.
	HTTPClient *http.Client
	// UserAgent is sent on every request.
	UserAgent string
	// Compression asks Backstage for gzip answers. Off by default: on a
	// loopback or LAN hop, Backstage's single Node thread spends more on
	// compressing than the bytes save, and this process more on inflating.
	// Turn it on for a Backstage behind a slow network.
	Compression bool
	// MaxConns bounds the connections kept open to Backstage (idle and in
	// use); set it to the concurrency cap towards Backstage so that every
	// concurrent request reuses a connection. Default 64.
	MaxConns int
	// Observe, when set, is called after every request to Backstage with a
	// fixed operation name (query, get, refs, facets), the status (0 when
	// no response arrived), the latency and the transport error if any.
	Observe Observer
	// Guard, when set, runs every request: it may cap concurrency and rate,
	// coalesce identical concurrent requests and serve short-lived cached
	// answers. It must return fn's results (or an error).
	Guard Guard
}

// Fetch performs one request to Backstage and returns its body, its HTTP
// status and an error. It is an alias so that any guard written against
// the same function shape (ratelimit.Upstream.Do) is a Guard as it is.
type Fetch = func(ctx context.Context) (body []byte, status int, err error)

// Guard runs fetch, one request to Backstage identified by key, and returns
// fetch's results or an error of its own: it may cap concurrency and rate,
// coalesce identical concurrent requests and serve short-lived cached
// answers (see Config.Guard).
type Guard func(ctx context.Context, key string, fetch Fetch) ([]byte, int, error)

// Observer is told about every request to Backstage: a fixed operation
// name (query, get, refs, facets), the status (0 when no response
// arrived), the latency and the transport error if any.
type Observer func(op string, status int, d time.Duration, err error)

// Client talks to one Backstage catalog. It is safe for concurrent use.
type Client struct {
	observe Observer
	guard   Guard
	base    string
	token   TokenSource
	timeout time.Duration
	max     int64
	hc      *http.Client
	ua      string
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("catalog: baseUrl %q must be an absolute http(s) URL, e.g. http://localhost:7007", cfg.BaseURL)
	}
	if cfg.Token == nil {
		return nil, fmt.Errorf("catalog: a Backstage token is required")
	}
	c := &Client{
		base:    u.String() + "/api/catalog",
		token:   cfg.Token,
		timeout: cfg.Timeout,
		max:     cfg.MaxResponseBytes,
		hc:      cfg.HTTPClient,
		ua:      cfg.UserAgent,
		observe: cfg.Observe,
		guard:   cfg.Guard,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.max <= 0 {
		c.max = DefaultMaxResponseBytes
	}
	if c.hc == nil {
		conns := cfg.MaxConns
		if conns <= 0 {
			conns = 64
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = conns
		tr.MaxIdleConnsPerHost = conns
		tr.DisableCompression = !cfg.Compression
		tr.ResponseHeaderTimeout = c.timeout
		c.hc = &http.Client{Transport: tr}
	}
	if c.ua == "" {
		c.ua = "backstage-mcp"
	}
	return c, nil
}

// Order is one orderField: a field path and its direction.
type Order struct {
	Field      string
	Descending bool
}

// Query is a by-query request. When Cursor is set Backstage ignores
// Filters, Order and FullText (the cursor carries its own); Fields and
// Limit still apply.
type Query struct {
	Filters        []Filter
	Fields         []string
	Limit          int
	Order          []Order
	FullTextTerm   string
	FullTextFields []string
	Cursor         string
}

// Page is one page of query results.
type Page struct {
	Items      []json.RawMessage
	TotalItems int
	NextCursor string
	PrevCursor string
}

// Query runs GET /entities/by-query.
func (c *Client) Query(ctx context.Context, q Query) (*Page, error) {
	v := url.Values{}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	} else {
		for _, f := range q.Filters {
			s, err := f.Encode()
			if err != nil {
				return nil, err
			}
			v.Add("filter", s)
		}
		for _, o := range q.Order {
			if err := filter.CheckKey(o.Field); err != nil {
				return nil, fmt.Errorf("catalog: order field: %w", err)
			}
			dir := "asc"
			if o.Descending {
				dir = "desc"
			}
			v.Add("orderField", o.Field+","+dir)
		}
		if q.FullTextTerm != "" {
			v.Set("fullTextFilterTerm", q.FullTextTerm)
			if len(q.FullTextFields) > 0 {
				if err := validateFields(q.FullTextFields); err != nil {
					return nil, err
				}
				v.Set("fullTextFilterFields", strings.Join(q.FullTextFields, ","))
			}
		}
	}
	if len(q.Fields) > 0 {
		if err := validateFields(q.Fields); err != nil {
			return nil, err
		}
		v.Set("fields", strings.Join(q.Fields, ","))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	body, status, err := c.do(ctx, http.MethodGet, "/entities/by-query", v, nil, "query entities", "query")
	if err != nil {
		return nil, err
	}
	if !gjson.ValidBytes(body) {
		return nil, garbage("query entities", status)
	}
	res := gjson.ParseBytes(body)
	items, p := pageFields(res)
	if !items.IsArray() {
		return nil, garbage("query entities", status)
	}
	items.ForEach(func(_, it gjson.Result) bool {
		if it.IsObject() {
			p.Items = append(p.Items, json.RawMessage(it.Raw))
		}
		return true
	})
	return p, nil
}

// pageFields reads the items, totalItems and pageInfo cursors of a
// by-query answer: res.Get("items"), res.Get("totalItems").Int() and
// res.Get("pageInfo.nextCursor" / "pageInfo.prevCursor").String(), found
// in one walk over the top-level keys instead of one per path (each Get
// skips over every item again). That is, the first "items" and
// "totalItems" keys, and each cursor from the first "pageInfo" object
// that has it. An answer whose top-level keys hold escapes, or whose
// pageInfo is not an object, is read with the four Gets themselves.
func pageFields(res gjson.Result) (items gjson.Result, p *Page) {
	var total gjson.Result
	var next, prev string
	var haveItems, haveTotal, haveNext, havePrev bool
	plain := res.IsObject()
	if plain {
		res.ForEach(func(k, v gjson.Result) bool {
			if strings.IndexByte(k.Raw, '\\') >= 0 {
				plain = false
				return false
			}
			switch k.Str {
			case "items":
				if !haveItems {
					items, haveItems = v, true
				}
			case "totalItems":
				if !haveTotal {
					total, haveTotal = v, true
				}
			case "pageInfo":
				if !v.IsObject() {
					plain = false
					return false
				}
				if n := v.Get("nextCursor"); !haveNext && n.Exists() {
					next, haveNext = n.String(), true
				}
				if n := v.Get("prevCursor"); !havePrev && n.Exists() {
					prev, havePrev = n.String(), true
				}
			}
			return true
		})
	}
	if !plain {
		return res.Get("items"), &Page{
			TotalItems: int(res.Get("totalItems").Int()),
			NextCursor: res.Get("pageInfo.nextCursor").String(),
			PrevCursor: res.Get("pageInfo.prevCursor").String(),
		}
	}
	return items, &Page{TotalItems: int(total.Int()), NextCursor: next, PrevCursor: prev}
}

// GetByName runs GET /entities/by-name/{kind}/{namespace}/{name}.
// A missing entity is ErrNotFound.
func (c *Client) GetByName(ctx context.Context, r Ref) (json.RawMessage, error) {
	if err := ValidateKind(r.Kind); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRef, err)
	}
	if err := ValidateNamespace(r.Namespace); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRef, err)
	}
	if err := ValidateName(r.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRef, err)
	}
	p := "/entities/by-name/" + url.PathEscape(r.Kind) + "/" + url.PathEscape(r.Namespace) + "/" + url.PathEscape(r.Name)
	op := "get entity " + r.String()
	body, status, err := c.do(ctx, http.MethodGet, p, nil, nil, op, "get")
	if err != nil {
		return nil, err
	}
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, garbage(op, status)
	}
	return json.RawMessage(body), nil
}

// GetByRefs runs POST /entities/by-refs in batches (at most 1000 refs and
// 90 KiB of body each). The result has one item per ref, in order, nil for
// refs that do not exist.
func (c *Client) GetByRefs(ctx context.Context, refs []string, fields []string) ([]json.RawMessage, error) {
	if len(fields) > 0 {
		if err := validateFields(fields); err != nil {
			return nil, err
		}
	}
	out := make([]json.RawMessage, 0, len(refs))
	for start := 0; start < len(refs); {
		end, size := start, 64
		for end < len(refs) && end-start < MaxRefsPerBatch {
			n := len(refs[end]) + 4
			if size+n > MaxRefsBodyBytes && end > start {
				break
			}
			size += n
			end++
		}
		batch, err := c.byRefs(ctx, refs[start:end], fields)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		start = end
	}
	return out, nil
}

func (c *Client) byRefs(ctx context.Context, refs, fields []string) ([]json.RawMessage, error) {
	req := struct {
		EntityRefs []string `json:"entityRefs"`
		Fields     []string `json:"fields,omitempty"`
	}{refs, fields}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode by-refs: %w", err)
	}
	op := fmt.Sprintf("get %d entities by ref", len(refs))
	body, status, err := c.do(ctx, http.MethodPost, "/entities/by-refs", nil, b, op, "refs")
	if err != nil {
		return nil, err
	}
	items := gjson.GetBytes(body, "items")
	if !gjson.ValidBytes(body) || !items.IsArray() {
		return nil, garbage(op, status)
	}
	arr := items.Array()
	if len(arr) != len(refs) {
		return nil, garbage(op, status)
	}
	out := make([]json.RawMessage, len(arr))
	for i, it := range arr {
		if it.IsObject() {
			out[i] = json.RawMessage(it.Raw)
		}
	}
	return out, nil
}

// FacetValue is one value of a facet and how many entities have it.
type FacetValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Facets runs GET /entity-facets for the given facets, restricted by the
// (ORed) filters.
func (c *Client) Facets(ctx context.Context, facets []string, filters []Filter) (map[string][]FacetValue, error) {
	v := url.Values{}
	for _, f := range facets {
		if err := filter.CheckKey(f); err != nil {
			return nil, fmt.Errorf("catalog: facet: %w", err)
		}
		v.Add("facet", f)
	}
	for _, f := range filters {
		s, err := f.Encode()
		if err != nil {
			return nil, err
		}
		v.Add("filter", s)
	}
	body, status, err := c.do(ctx, http.MethodGet, "/entity-facets", v, nil, "list facets", "facets")
	if err != nil {
		return nil, err
	}
	var res struct {
		Facets map[string][]FacetValue `json:"facets"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Facets == nil {
		return nil, garbage("list facets", status)
	}
	return res.Facets, nil
}

// Ping checks that Backstage answers an authenticated catalog query.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Query(ctx, Query{Limit: 1, Fields: []string{"kind"}})
	return err
}

func validateFields(fields []string) error {
	for _, f := range fields {
		if err := filter.CheckKey(f); err != nil {
			return fmt.Errorf("catalog: field %q: %w", f, err)
		}
	}
	return nil
}

func garbage(op string, status int) error {
	return &UpstreamError{Kind: ErrUnavailable, Status: status, Op: op, Cause: errors.New("unexpected response body")}
}

// do performs one request (through the guard when set) and returns the
// body of a 2xx response, or a typed error. Upstream bodies are never
// copied into errors.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, op, metricOp string) ([]byte, int, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	fetch := func(ctx context.Context) ([]byte, int, error) {
		return c.fetch(ctx, method, u, body, metricOp)
	}
	var (
		data   []byte
		status int
		err    error
	)
	if c.guard != nil {
		key := method + " " + u
		if body != nil {
			key += "\x00" + string(body)
		}
		data, status, err = c.guard(ctx, key, fetch)
	} else {
		data, status, err = fetch(ctx)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, 0, fmt.Errorf("catalog: %s: %w", op, ctx.Err())
		}
		var ue *UpstreamError
		if errors.As(err, &ue) {
			ue.Op = op
			return nil, status, ue
		}
		return nil, status, &UpstreamError{Kind: ErrUnavailable, Status: status, Op: op, Cause: transportCause(err)}
	}
	if status >= 200 && status < 300 {
		return data, status, nil
	}
	ue := &UpstreamError{Status: status, Op: op, Name: errorName(data)}
	switch status {
	case http.StatusNotFound:
		ue.Kind = ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		ue.Kind = ErrNotAllowed
	case http.StatusBadRequest:
		ue.Kind = ErrBadInput
	case http.StatusTooManyRequests:
		ue.Kind = ErrRateLimited
	default:
		ue.Kind = ErrUnavailable
	}
	return nil, status, ue
}

// fetch sends one HTTP request and reads its bounded body. Only transport
// failures are errors; any status is returned with its body.
func (c *Client) fetch(ctx context.Context, method, u string, body []byte, metricOp string) (data []byte, status int, err error) {
	start := time.Now()
	if c.observe != nil {
		defer func() { c.observe(metricOp, status, time.Since(start), err) }()
	}
	tok, err := c.token.Token()
	if err != nil {
		return nil, 0, &UpstreamError{Kind: ErrUnavailable, Cause: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, 0, context.Canceled
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if int64(len(data)) > c.max {
		return nil, resp.StatusCode, TooLarge("", resp.StatusCode, c.max)
	}
	return data, resp.StatusCode, nil
}

// errorName extracts Backstage's error name if it is a plain identifier;
// anything else is dropped so that no upstream text leaks.
func errorName(body []byte) string {
	n := gjson.GetBytes(body, "error.name").String()
	if n == "" || len(n) > 64 {
		return ""
	}
	for _, c := range n {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return n
}

// transportCause keeps the class of a transport failure without URLs.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errTimedOut
		}
		return errors.New("connection failed")
	}
	return errors.New("read failed")
}
