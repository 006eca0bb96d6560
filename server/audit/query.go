package audit

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Filter selects records in Query. Empty fields match everything; string
// comparisons ignore case except Tool.
type Filter struct {
	// User matches part of the user's sub, email or Backstage ref: "jane"
	// finds jane.doe@example.com and user:default/jane.doe.
	User string
	// Agent matches the agent's client id or clientInfo name exactly.
	Agent string
	// Client matches part of the MCP client the agent announced
	// (clientInfo "name version"), e.g. "claude" or "cursor 1.2".
	Client string
	// Redacted keeps only records with at least one redaction.
	Redacted bool
	// IP keeps records whose client address (Record.Source, or one of an
	// aggregated record's Sources) is in this prefix (a single address is
	// a /32 or /128). Only records that carry an address match: HTTP calls,
	// sessions and authentication failures; stdio calls have none.
	IP netip.Prefix
	// Tool matches the tool name exactly.
	Tool string
	// Decision matches the decision (Decision.Matches: old spellings
	// "allow" and "error" match allowed and failed; "deny" or "denied"
	// matches every denial).
	Decision Decision
	// Type matches the record type exactly.
	Type Type
	// Entity matches one of the entity refs recorded (capped list).
	Entity string
	// Replica matches the replica that wrote the record exactly.
	Replica string
	// Since keeps records at or after this time (zero: no bound).
	Since time.Time
	// Until keeps records strictly before this time (zero: no bound).
	Until time.Time
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Record) bool {
	if f.User != "" && !containsFold(r.User.Sub, f.User) && !containsFold(r.User.Email, f.User) && !containsFold(r.User.Ref, f.User) {
		return false
	}
	if f.Agent != "" && !strings.EqualFold(f.Agent, r.Agent.ClientID) && !strings.EqualFold(f.Agent, r.Agent.Name) {
		return false
	}
	if f.Client != "" && (r.Agent.Name == "" || !containsFold(ClientLabel(r.Agent), f.Client)) {
		return false
	}
	if f.Redacted && r.RedactionTotal()+r.ArgumentRedactionTotal() == 0 {
		return false
	}
	if f.IP.IsValid() && !f.matchIP(r) {
		return false
	}
	if f.Tool != "" && f.Tool != r.Tool {
		return false
	}
	if f.Decision != "" && !r.Decision.Matches(f.Decision) {
		return false
	}
	if f.Type != "" && f.Type != r.Type {
		return false
	}
	if f.Replica != "" && f.Replica != r.Replica {
		return false
	}
	if f.Entity != "" && !slices.ContainsFunc(r.Entities.Refs, func(ref string) bool { return strings.EqualFold(ref, f.Entity) }) {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	return true
}

// matchIP reports whether r's client address, or one of its aggregated
// sources, is in f.IP.
func (f Filter) matchIP(r *Record) bool {
	if a, ok := sourceAddr(r.Source); ok && f.IP.Contains(a) {
		return true
	}
	for _, sc := range r.Sources {
		if a, ok := sourceAddr(sc.Source); ok && f.IP.Contains(a) {
			return true
		}
	}
	return false
}

// QueryResult holds the records Query found and the lines it skipped.
type QueryResult struct {
	// Records match the filter, in chain order.
	Records []Record
	// Skipped are lines that are not records (torn or damaged). Query does
	// not check hashes: run Verify to trust the records.
	Skipped []Location
}

// Query reads files and returns the records that match f. The files of
// one replica are read in chain order (as Verify orders them); the records
// of several replicas (see Chains) are merged by time. It does not verify
// the chain.
func Query(files []string, f Filter) (QueryResult, error) {
	chains, err := Chains(files)
	if err != nil {
		return QueryResult{}, err
	}
	if len(chains) == 1 {
		return queryChain(chains[0].Files, f)
	}
	var res QueryResult
	for _, c := range chains {
		cr, err := queryChain(c.Files, f)
		if err != nil {
			return res, err
		}
		res.Records = append(res.Records, cr.Records...)
		res.Skipped = append(res.Skipped, cr.Skipped...)
	}
	slices.SortStableFunc(res.Records, func(a, b Record) int { return a.Time.Compare(b.Time) })
	return res, nil
}

// queryChain is Query over the files of one chain.
func queryChain(files []string, f Filter) (QueryResult, error) {
	ordered, err := orderFiles(files)
	if err != nil {
		return QueryResult{}, err
	}
	s := newStream(ordered)
	defer s.close()
	var res QueryResult
	for {
		e, ok, err := s.next()
		if err != nil {
			return res, err
		}
		if !ok {
			return res, nil
		}
		if e.tooLong {
			res.Skipped = append(res.Skipped, e.loc)
			continue
		}
		r, err := parseLine(e.line)
		if err != nil {
			res.Skipped = append(res.Skipped, e.loc)
			continue
		}
		if f.Match(r) {
			res.Records = append(res.Records, *r)
		}
	}
}

// Outcomes are the counters every summary row carries: how the events
// it counts were decided, and the redactions sent.
type Outcomes struct {
	// Denied counts scope_denied decisions and authentication failures.
	Denied int `json:"denied"`
	// Hidden counts hidden_by_policy decisions.
	Hidden int `json:"hidden"`
	// RateLimited counts rate_limited decisions.
	RateLimited int `json:"rateLimited"`
	// Refused counts refused decisions.
	Refused int `json:"refused"`
	// Errors counts failed decisions (error in old records).
	Errors int `json:"errors"`
	// Redactions is the total number of redactions sent.
	Redactions int `json:"redactions"`
}

// add counts n events of record r.
func (o *Outcomes) add(r *Record, n int) {
	switch r.Decision.Canonical() {
	case DecisionScopeDenied, DecisionDeny:
		o.Denied += n
	case DecisionHiddenByPolicy:
		o.Hidden += n
	case DecisionRateLimited:
		o.RateLimited += n
	case DecisionRefused:
		o.Refused += n
	case DecisionFailed:
		o.Errors += n
	}
	o.Redactions += r.RedactionTotal()
}

// SummaryRow aggregates the calls of one user through one agent to one tool.
type SummaryRow struct {
	// User is the user's email, else Backstage ref, else sub, else "-".
	User string `json:"user"`
	// Agent is the agent's client id, else clientInfo name, else "-".
	Agent string `json:"agent"`
	// Tool is the tool name; authentication failures use "(auth)".
	Tool string `json:"tool"`
	// Calls counts events: calls and authentication failures, an
	// aggregated record for as many as it stands for (Count).
	Calls int `json:"calls"`
	Outcomes
	// P50Ms and P95Ms are latency percentiles (nearest rank) in ms.
	P50Ms float64 `json:"p50Ms"`
	// P95Ms is the 95th percentile latency in ms.
	P95Ms float64 `json:"p95Ms"`
}

// Summary aggregates call and auth_failure records per user × agent × tool,
// sorted by user, agent and tool. Other record types are ignored.
func Summary(records []Record) []SummaryRow {
	type key struct{ user, agent, tool string }
	type acc struct {
		row  SummaryRow
		lats []float64
	}
	groups := map[key]*acc{}
	for i := range records {
		r := &records[i]
		if r.Type != TypeCall && r.Type != TypeAuthFailure {
			continue
		}
		k := key{UserLabel(r.User), AgentLabel(r.Agent), r.Tool}
		if r.Type == TypeAuthFailure {
			k.tool = "(auth)"
		} else if k.tool == "" {
			k.tool = "-"
		}
		a := groups[k]
		if a == nil {
			a = &acc{row: SummaryRow{User: k.user, Agent: k.agent, Tool: k.tool}}
			groups[k] = a
		}
		n := r.events()
		a.row.Calls += n
		a.row.add(r, n)
		a.lats = append(a.lats, r.DurationMs)
	}
	rows := make([]SummaryRow, 0, len(groups))
	for _, a := range groups {
		slices.Sort(a.lats)
		a.row.P50Ms = percentile(a.lats, 50)
		a.row.P95Ms = percentile(a.lats, 95)
		rows = append(rows, a.row)
	}
	slices.SortFunc(rows, func(a, b SummaryRow) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Agent, b.Agent), cmp.Compare(a.Tool, b.Tool))
	})
	return rows
}

// percentile returns the nearest-rank p-th percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// containsFold reports whether sub is in s, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// sourceAddr parses a recorded client address ("192.0.2.1", "[2001:db8::1]:443"…).
func sourceAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err == nil
}

// ClientLabel is how reviewer tools show the MCP client an agent announced:
// clientInfo "name version", else "-".
func ClientLabel(a Agent) string {
	return cmp.Or(strings.TrimSpace(a.Name+" "+a.Version), "-")
}

// RollupKey names what RollUp groups by.
type RollupKey string

// Roll-up keys.
const (
	// ByUser groups by UserLabel.
	ByUser RollupKey = "user"
	// ByAgent groups by AgentLabel (OAuth client id, else client name).
	ByAgent RollupKey = "agent"
	// ByClient groups by ClientLabel (MCP clientInfo name and version).
	ByClient RollupKey = "client"
	// ByEntity groups by entity ref returned (lower case); a call counts
	// once for each ref it recorded (at most audit.maxEntityRefs per call).
	ByEntity RollupKey = "entity"
	// ByDecision groups by decision.
	ByDecision RollupKey = "decision"
	// ByTool groups by tool name.
	ByTool RollupKey = "tool"
	// ByIP groups by client address (Record.Source; an aggregated
	// record's Sources each with its own count).
	ByIP RollupKey = "ip"
)

// RollupKeys lists the keys RollUp accepts, for help texts and errors.
func RollupKeys() []RollupKey {
	return []RollupKey{ByUser, ByAgent, ByClient, ByEntity, ByDecision, ByTool, ByIP}
}

// RollupRow is one group of RollUp.
type RollupRow struct {
	// Key is the user, agent, client, entity ref, decision or tool.
	Key string `json:"key"`
	// Calls counts events: calls and authentication failures, an
	// aggregated record for as many as it stands for.
	Calls int `json:"calls"`
	// Users counts distinct users.
	Users int `json:"users"`
	// Entities is the total number of entities returned.
	Entities int `json:"entities"`
	Outcomes
	// P50Ms is the median latency (nearest rank) in ms.
	P50Ms float64 `json:"p50Ms"`
	// P95Ms is the 95th percentile latency in ms.
	P95Ms float64 `json:"p95Ms"`
}

// RollupSorts lists the columns RollUp output may be ordered by (largest
// first).
func RollupSorts() []string {
	return []string{"calls", "entities", "users", "denied", "hidden", "rate_limited", "refused", "errors", "redactions", "p95"}
}

// RollUp aggregates call and auth_failure records by one key, ordered by the
// column sortBy (one of RollupSorts, largest first; ties by key), and keeps
// the first top rows (top <= 0: all).
func RollUp(records []Record, by RollupKey, sortBy string, top int) ([]RollupRow, error) {
	if !slices.Contains(RollupKeys(), by) {
		return nil, fmt.Errorf("audit: cannot group by %q (want one of %v)", by, RollupKeys())
	}
	if !slices.Contains(RollupSorts(), sortBy) {
		return nil, fmt.Errorf("audit: cannot sort by %q (want one of %v)", sortBy, RollupSorts())
	}
	type acc struct {
		row   RollupRow
		users map[string]bool
		lats  []float64
	}
	groups := map[string]*acc{}
	add := func(key string, r *Record, n int) {
		a := groups[key]
		if a == nil {
			a = &acc{row: RollupRow{Key: key}, users: map[string]bool{}}
			groups[key] = a
		}
		a.row.Calls += n
		a.users[UserLabel(r.User)] = true
		a.row.Entities += r.Entities.Count
		a.row.add(r, n)
		a.lats = append(a.lats, r.DurationMs)
	}
	for i := range records {
		r := &records[i]
		if r.Type != TypeCall && r.Type != TypeAuthFailure {
			continue
		}
		switch by {
		case ByUser:
			add(UserLabel(r.User), r, r.events())
		case ByAgent:
			add(AgentLabel(r.Agent), r, r.events())
		case ByClient:
			add(ClientLabel(r.Agent), r, r.events())
		case ByDecision:
			add(cmp.Or(string(r.Decision.Canonical()), "-"), r, r.events())
		case ByTool:
			tool := cmp.Or(r.Tool, "-")
			if r.Type == TypeAuthFailure {
				tool = "(auth)"
			}
			add(tool, r, r.events())
		case ByIP:
			if len(r.Sources) == 0 {
				add(cmp.Or(r.Source, "-"), r, r.events())
				break
			}
			for _, sc := range r.Sources {
				add(cmp.Or(sc.Source, "-"), r, max(sc.Count, 1))
			}
		case ByEntity:
			seen := map[string]bool{}
			for _, ref := range r.Entities.Refs {
				k := strings.ToLower(ref)
				if !seen[k] {
					seen[k] = true
					add(k, r, 1)
				}
			}
		}
	}
	rows := make([]RollupRow, 0, len(groups))
	for _, a := range groups {
		slices.Sort(a.lats)
		a.row.P50Ms = percentile(a.lats, 50)
		a.row.P95Ms = percentile(a.lats, 95)
		a.row.Users = len(a.users)
		rows = append(rows, a.row)
	}
	col := func(r RollupRow) float64 {
		switch sortBy {
		case "entities":
			return float64(r.Entities)
		case "users":
			return float64(r.Users)
		case "denied":
			return float64(r.Denied)
		case "hidden":
			return float64(r.Hidden)
		case "rate_limited":
			return float64(r.RateLimited)
		case "refused":
			return float64(r.Refused)
		case "errors":
			return float64(r.Errors)
		case "redactions":
			return float64(r.Redactions)
		case "p95":
			return r.P95Ms
		}
		return float64(r.Calls)
	}
	slices.SortFunc(rows, func(a, b RollupRow) int {
		return cmp.Or(cmp.Compare(col(b), col(a)), cmp.Compare(a.Key, b.Key))
	})
	if top > 0 && len(rows) > top {
		rows = rows[:top]
	}
	return rows, nil
}

// events is how many events r stands for: Count for an aggregated
// record, else one.
func (r *Record) events() int { return max(r.Count, 1) }

// UserLabel is how reviewer tools show a user: email, else ref, else sub,
// else "-".
func UserLabel(u User) string { return cmp.Or(u.Email, u.Ref, u.Sub, "-") }

// AgentLabel is how reviewer tools show an agent: client id, else name,
// else "-".
func AgentLabel(a Agent) string { return cmp.Or(a.ClientID, a.Name, "-") }
