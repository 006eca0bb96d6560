package audit

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// Filter selects records in Query. Empty fields match everything; string
// comparisons ignore case except Tool.
type Filter struct {
	// User matches the user's sub, email or Backstage ref.
	User string
	// Agent matches the agent's client id or clientInfo name.
	Agent string
	// Tool matches the tool name exactly.
	Tool string
	// Decision matches the decision exactly.
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
	if f.User != "" && !strings.EqualFold(f.User, r.User.Sub) && !strings.EqualFold(f.User, r.User.Email) && !strings.EqualFold(f.User, r.User.Ref) {
		return false
	}
	if f.Agent != "" && !strings.EqualFold(f.Agent, r.Agent.ClientID) && !strings.EqualFold(f.Agent, r.Agent.Name) {
		return false
	}
	if f.Tool != "" && f.Tool != r.Tool {
		return false
	}
	if f.Decision != "" && f.Decision != r.Decision {
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

// SummaryRow aggregates the calls of one user through one agent to one tool.
type SummaryRow struct {
	// User is the user's email, else Backstage ref, else sub, else "-".
	User string `json:"user"`
	// Agent is the agent's client id, else clientInfo name, else "-".
	Agent string `json:"agent"`
	// Tool is the tool name; authentication failures use "(auth)".
	Tool string `json:"tool"`
	// Calls counts records (calls and authentication failures).
	Calls int `json:"calls"`
	// Denied counts deny decisions.
	Denied int `json:"denied"`
	// RateLimited counts rate_limited decisions.
	RateLimited int `json:"rateLimited"`
	// Errors counts error decisions.
	Errors int `json:"errors"`
	// Redactions is the total number of redactions.
	Redactions int `json:"redactions"`
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
		a.row.Calls++
		switch r.Decision {
		case DecisionDeny:
			a.row.Denied++
		case DecisionRateLimited:
			a.row.RateLimited++
		case DecisionError:
			a.row.Errors++
		}
		a.row.Redactions += r.RedactionTotal()
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

// UserLabel is how reviewer tools show a user: email, else ref, else sub,
// else "-".
func UserLabel(u User) string { return cmp.Or(u.Email, u.Ref, u.Sub, "-") }

// AgentLabel is how reviewer tools show an agent: client id, else name,
// else "-".
func AgentLabel(a Agent) string { return cmp.Or(a.ClientID, a.Name, "-") }
