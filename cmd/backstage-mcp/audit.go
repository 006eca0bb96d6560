package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

const auditUsage = `Usage: backstage-mcp audit <verify|query|summary|keygen> [flags] FILE…

Tools for security reviewers, working on the audit files the server writes
(audit.log and its rotated siblings audit.log.<timestamp>). Files may be given
in any order; they are put in chain order automatically.

Commands:
  verify   check the hash chain; print the first bad record and why (with
           the files of several replicas: one chain per replica, and a
           combined summary)
  query    list records matching filters, as a table, JSON lines or CSV
  summary  calls, denials, rate limits, errors, redactions and latency
           per user, agent and tool, or rolled up --by user, agent,
           client, entity, decision or tool with --top N
  keygen   make the Ed25519 key pair that signs checkpoints
           (audit.checkpoint.keyFile) and verifies them (verify --key)

Examples:
  backstage-mcp audit verify /var/log/backstage-mcp/audit.log*
  backstage-mcp audit verify --key audit-key.pub.pem audit.log*
  backstage-mcp audit query audit.log* --user jane --since 24h --format csv
  backstage-mcp audit summary audit.log* --by user --sort entities --top 10 --since 7d

Exit status: 0 ok, 1 verification failed (or a file could not be read),
2 usage error. Run "backstage-mcp audit <command> --help" for its flags.
`

// runAudit implements `backstage-mcp audit verify|query|summary`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup("audit", auditUsage, args, stdout, stderr, map[string]func([]string) int{
		"verify":  func(args []string) int { return auditVerify(ctx, args, stdout, stderr) },
		"query":   func(args []string) int { return auditQuery(ctx, args, stdout, stderr, false) },
		"summary": func(args []string) int { return auditQuery(ctx, args, stdout, stderr, true) },
		"keygen":  func(args []string) int { return auditKeygen(args, stdout, stderr) },
	})
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlags runs parseInterspersed and turns its outcome into an exit code:
// -1 means carry on.
func parseFlags(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) ([]string, int) {
	fs.SetOutput(io.Discard)
	files, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, help)
		printDefaults(fs, stdout)
		return nil, 0
	case err != nil:
		fmt.Fprintf(stderr, "backstage-mcp audit %s: %v\n\n%s", fs.Name(), err, help)
		printDefaults(fs, stderr)
		return nil, 2
	case len(files) == 0:
		fmt.Fprintf(stderr, "backstage-mcp audit %s: no FILE given\n\n%s", fs.Name(), help)
		printDefaults(fs, stderr)
		return nil, 2
	}
	return files, -1
}

func printDefaults(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

const verifyHelp = `Usage: backstage-mcp audit verify [--key PUB] [--checkpoints FILE] [--anchor SEQ:HASH] [--json] FILE…

Checks every record: valid JSON, its hash, the link to the previous record and
seq continuity across rotated files. Prints the first bad record (file, line,
seq) and why: edited, deleted, reordered, duplicated, truncated, rewritten or
forged. A torn line (crash in the middle of a write) is reported as a warning,
not a failure.

With --key (the public key of audit.checkpoint.keyFile), every signed
checkpoint must verify, sign the record just before it and name the previous
checkpoint, and no more than its "every" records may pass without one: a
chain rewritten with recomputed hashes (records edited, deleted, inserted,
moved or renumbered), a checkpoint removed or one signed with another key
fails as "rewritten" or "forged" at the checkpoint that proves it.

Removing the last records of the newest file leaves a valid, shorter chain.
Two things prove the log once reached further: --checkpoints, the copy of
the checkpoints the server kept apart (audit.checkpoint.file), or an anchor
kept elsewhere (the seq and hash printed by an earlier verify).

Examples:
  backstage-mcp audit verify audit.log*
  backstage-mcp audit verify --key audit-key.pub.pem --checkpoints /backup/audit-checkpoints.log audit.log*
  backstage-mcp audit verify --anchor 1234:9f86d081884c7d65… audit.log*
`

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func auditVerify(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	anchor := fs.String("anchor", "", "`SEQ:HASH` of a record known from elsewhere; fails if the log does not contain it")
	var keyFiles, cpFiles repeated
	fs.Var(&keyFiles, "key", "Ed25519 public key `PEM` file that checks the signed checkpoints (PUBLIC KEY or PRIVATE KEY blocks; repeat for old keys)")
	fs.Var(&cpFiles, "checkpoints", "the checkpoint copy `FILE` (audit.checkpoint.file): every checkpoint in it must be in the log")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	files, code := parseFlags(fs, args, verifyHelp, stdout, stderr)
	if code >= 0 {
		return code
	}
	var opts audit.VerifyOptions
	for _, kf := range keyFiles {
		keys, err := audit.LoadVerifyKeys(kf)
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp audit verify: --key: %v\n", err)
			return 2
		}
		opts.Keys = append(opts.Keys, keys...)
	}
	opts.CheckpointFiles = cpFiles
	if *anchor != "" {
		a, err := parseAnchor(*anchor)
		if err != nil {
			fmt.Fprintf(stderr, "backstage-mcp audit verify: %v\n", err)
			return 2
		}
		opts.Anchors = append(opts.Anchors, a)
	}
	fleet, err := audit.VerifyFleet(opts, files...)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit verify: %v\n", err)
		return 1
	}
	if len(fleet.Chains) > 1 {
		return printFleet(stdout, stderr, fleet, *asJSON)
	}
	res := fleet.Chains[0].VerifyResult
	if !*asJSON {
		defer printSigned(stdout, res, len(opts.Keys) > 0, len(cpFiles) > 0)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "backstage-mcp audit verify: %v\n", err)
			return 1
		}
	} else {
		printVerify(stdout, res)
	}
	if !res.OK {
		return 1
	}
	return 0
}

// printFleet prints the verification of several replicas' files: one
// block per chain, then the combined summary.
func printFleet(stdout, stderr io.Writer, fleet audit.FleetResult, asJSON bool) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(fleet); err != nil {
			fmt.Fprintf(stderr, "backstage-mcp audit verify: %v\n", err)
			return 1
		}
	} else {
		bad := 0
		for _, c := range fleet.Chains {
			fmt.Fprintf(stdout, "replica %s\n", c.Replica)
			printVerify(stdout, c.VerifyResult)
			if !c.OK {
				bad++
			}
		}
		if fleet.OK {
			fmt.Fprintf(stdout, "OK    %d replicas, %d records in %d files, every chain intact\n", len(fleet.Chains), fleet.Records, fleet.Files)
		} else {
			fmt.Fprintf(stdout, "FAIL  %d of %d replicas' chains are broken (see above); %d good records checked in %d files\n", bad, len(fleet.Chains), fleet.Records, fleet.Files)
		}
	}
	if !fleet.OK {
		return 1
	}
	return 0
}

// printSigned says what the checkpoints proved, after a single chain's
// result.
func printSigned(w io.Writer, res audit.VerifyResult, keys, copies bool) {
	if !res.OK {
		return
	}
	switch {
	case keys:
		fmt.Fprintf(w, "      signed: %d checkpoint(s) verified with the key, records up to seq %d signed", res.Checkpoints, res.SignedSeq)
		if res.Unsigned > 0 {
			fmt.Fprintf(w, "; the last %d record(s) come after the last checkpoint (not signed yet)", res.Unsigned)
		}
		fmt.Fprintln(w)
	case res.Checkpoints > 0:
		fmt.Fprintf(w, "      note: %d signed checkpoint(s) not checked: pass --key PUB to detect a rewrite with recomputed hashes\n", res.Checkpoints)
	}
	if copies {
		fmt.Fprintf(w, "      checkpoint copies: %d found in the log, none beyond its end\n", res.CheckpointCopies)
	}
}

func parseAnchor(s string) (audit.Anchor, error) {
	seqStr, hash, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if !ok || err != nil || seq == 0 || len(hash) != 64 {
		return audit.Anchor{}, fmt.Errorf("--anchor %q: want SEQ:HASH with a 64-digit hex hash", s)
	}
	return audit.Anchor{Seq: seq, Hash: strings.ToLower(hash)}, nil
}

func printVerify(w io.Writer, res audit.VerifyResult) {
	files := fmt.Sprintf("%d file", len(res.Files))
	if len(res.Files) != 1 {
		files += "s"
	}
	if !res.OK {
		p := res.Problem
		fmt.Fprintf(w, "FAIL  %s\n", p.Error())
		if res.Records > 0 {
			fmt.Fprintf(w, "      %d good records before it (seq %d..%d)\n", res.Records, res.FirstSeq, res.LastSeq)
		}
	} else {
		start := "chain starts at genesis"
		if !res.FromGenesis && res.Records > 0 {
			start = fmt.Sprintf("chain starts at seq %d: older files were not given or were removed", res.FirstSeq)
			if n := len(res.RemovedByRetention); n > 0 {
				start = fmt.Sprintf("chain starts at seq %d: seq 1..%d were removed by retention, as %d retention record(s) say (first at %s)", res.FirstSeq, res.FirstSeq-1, n, res.RemovedByRetention[0])
			}
		}
		fmt.Fprintf(w, "OK    %d records in %s, seq %d..%d, %s\n", res.Records, files, res.FirstSeq, res.LastSeq, start)
		if res.Records > 0 {
			if res.Checkpoints > 0 && res.Unsigned == 0 {
				fmt.Fprintf(w, "      last record: seq %d (checkpoint, after %s)\n", res.LastSeq, res.LastType)
			} else {
				fmt.Fprintf(w, "      last record: seq %d (%s)\n", res.LastSeq, res.LastType)
			}
			fmt.Fprintf(w, "      keep this anchor elsewhere to detect later truncation: --anchor %d:%s\n", res.LastSeq, res.LastHash)
			if res.LastType != audit.TypeServerStop {
				fmt.Fprintln(w, "      note: the log does not end with server_stop (server running, crashed, or tail removed)")
			}
		}
	}
	for _, loc := range res.Torn {
		fmt.Fprintf(w, "warning: torn line at %s (a crash or failed write mid-line; no acknowledged record is missing)\n", loc)
	}
}

const queryHelp = `Usage: backstage-mcp audit query [filters] [--format table|json|csv] FILE…

Lists the records that match every filter given, oldest first, as a table,
JSON lines (the records as written) or CSV (one row per record, for a
spreadsheet; cells that a spreadsheet would run as a formula are prefixed
with '). Query does not check the chain: run "audit verify" first.

Times given to --since and --until without a zone, and the times printed
in the table and CSV, are in the local time zone (or --tz).

--ip matches the client address records carry ("source"): every HTTP call,
session refusal and authentication failure (the TCP peer, or with
server.trustedProxies the address X-Forwarded-For names); stdio calls
carry none.

--decision takes a call decision: allowed, scope_denied, hidden_by_policy,
rate_limited, refused or failed; or deny (also: denied) for every denial,
authentication failures included. Records written before these decisions
existed say allow and error: allowed and failed match them.

Examples:
  backstage-mcp audit query audit.log* --user jane --since 24h
  backstage-mcp audit query audit.log* --decision hidden_by_policy --since 2025-03-01T09:00 --until 2025-03-01T18:00
  backstage-mcp audit query audit.log* --redacted --format csv > redacted.csv
  backstage-mcp audit query audit.log* --type auth_failure --ip 203.0.113.0/24
  backstage-mcp audit query audit.log* --client cursor --entity component:default/payments --format json
`

const summaryHelp = `Usage: backstage-mcp audit summary [--by KEY [--top N] [--sort COLUMN]] [filters] [--format table|json|csv] FILE…

Without --by: per user, agent and tool, calls, denials (scope_denied and
authentication failures), hidden_by_policy, rate-limited, refused and
failed calls (ERRORS), redactions sent and p50/p95 latency. Authentication
failures appear with tool "(auth)"; an aggregated record counts as the
requests it stands for.

With --by user|agent|client|entity|decision|tool|ip: one row per user,
agent (OAuth client id), MCP client (clientInfo name and version), entity
ref returned, decision, tool or client address, with calls, distinct
users, entities returned, the same decision columns, redactions and
latency; largest first by --sort (calls, entities, users, denied, hidden,
rate_limited, refused, errors, redactions, p95; default calls), the first
--top N rows. A call counts once for each entity ref it recorded (at most
audit.maxEntityRefs refs per record).

Takes the same filters as "audit query"; times are local (or --tz).

Examples:
  backstage-mcp audit summary audit.log*
  backstage-mcp audit summary audit.log* --by user --sort entities --top 10 --since 7d
  backstage-mcp audit summary audit.log* --by entity --top 20 --decision allowed
  backstage-mcp audit summary audit.log* --by ip --type auth_failure
  backstage-mcp audit summary audit.log* --by decision --format csv
`

// queryFlags are the flags of audit query and audit summary.
type queryFlags struct {
	user, agent, client, tool, decision, recType, replica, entity string
	ip, since, until, tz, format, by, sortBy                      string
	redacted, asJSON                                              bool
	top                                                           int
}

func auditQuery(_ context.Context, args []string, stdout, stderr io.Writer, summary bool) int {
	name, help := "query", queryHelp
	if summary {
		name, help = "summary", summaryHelp
	}
	var q queryFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&q.user, "user", "", "part of the user's `e-mail, Backstage ref or sub` (case-insensitive): jane finds jane.doe@example.com")
	fs.StringVar(&q.agent, "agent", "", "agent `client id or name`, exactly (case-insensitive)")
	fs.StringVar(&q.client, "client", "", "part of the MCP client's `name and version` (clientInfo), e.g. cursor or \"claude-code 2.1\"")
	fs.StringVar(&q.tool, "tool", "", "tool `name`")
	fs.StringVar(&q.decision, "decision", "", "`decision`: allowed, scope_denied, hidden_by_policy, rate_limited, refused, failed, or deny (every denial)")
	fs.StringVar(&q.recType, "type", "", "record `type`: call, auth_failure, session, server_start, server_stop, policy_reload, checkpoint, retention")
	fs.StringVar(&q.replica, "replica", "", "only records written by the replica `name`")
	fs.StringVar(&q.entity, "entity", "", "entity `ref` returned, e.g. component:default/payments")
	fs.BoolVar(&q.redacted, "redacted", false, "only records with at least one redaction")
	fs.StringVar(&q.ip, "ip", "", "client `address or range` (192.0.2.7, 192.0.2.0/24) of HTTP calls, sessions and authentication failures")
	fs.StringVar(&q.since, "since", "", "records at or after `WHEN`: 2025-03-01, 2025-03-01T09:00 (local time), RFC 3339 with a zone, or an age like 90m, 24h, 7d")
	fs.StringVar(&q.until, "until", "", "records before `WHEN` (same forms as --since)")
	fs.StringVar(&q.tz, "tz", "", "time `zone` for --since, --until and the times printed: Local (default), UTC, an IANA name (Europe/Paris) or an offset (+05:30)")
	fs.StringVar(&q.format, "format", "table", "output `format`: table, json or csv")
	fs.BoolVar(&q.asJSON, "json", false, "same as --format json")
	if summary {
		fs.StringVar(&q.by, "by", "", "group by `KEY`: user, agent, client, entity, decision, tool or ip")
		fs.IntVar(&q.top, "top", 0, "with --by, keep the first `N` rows (0: all)")
		fs.StringVar(&q.sortBy, "sort", "", "with --by, order by `COLUMN`, largest first: calls (default), entities, users, denied, hidden, rate_limited, refused, errors, redactions, p95")
	}
	files, code := parseFlags(fs, args, help, stdout, stderr)
	if code >= 0 {
		return code
	}
	f, loc, err := q.filter(time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit %s: %v\n", name, err)
		return 2
	}
	if q.asJSON {
		q.format = "json"
	}
	res, err := audit.Query(files, f)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit %s: %v\n", name, err)
		return 1
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(stderr, "warning: %d line(s) are not records (first at %s); run \"audit verify\"\n", len(res.Skipped), res.Skipped[0])
	}
	switch {
	case summary && q.by != "":
		var rows []audit.RollupRow
		if rows, err = audit.RollUp(res.Records, audit.RollupKey(q.by), q.sortBy, q.top); err == nil {
			err = printRollup(stdout, q.by, rows, q.format)
		}
	case summary:
		err = printSummary(stdout, audit.Summary(res.Records), q.format)
	default:
		err = printRecords(stdout, res.Records, q.format, loc)
	}
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit %s: %v\n", name, err)
		return 1
	}
	return 0
}

// filter checks the flags and builds the filter and the time zone.
func (q *queryFlags) filter(now time.Time) (audit.Filter, *time.Location, error) {
	f := audit.Filter{User: q.user, Agent: q.agent, Client: q.client, Tool: q.tool, Entity: q.entity,
		Decision: audit.Decision(q.decision), Type: audit.Type(q.recType), Replica: q.replica, Redacted: q.redacted}
	loc, err := parseZone(q.tz)
	if err != nil {
		return f, nil, err
	}
	if f.Since, err = parseWhen(q.since, now, loc); err != nil {
		return f, nil, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseWhen(q.until, now, loc); err != nil {
		return f, nil, fmt.Errorf("--until: %w", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, nil, fmt.Errorf("--since %s is not before --until %s: the window is empty", f.Since.In(loc).Format(time.RFC3339), f.Until.In(loc).Format(time.RFC3339))
	}
	if q.ip != "" {
		if f.IP, err = parseIP(q.ip); err != nil {
			return f, nil, err
		}
	}
	switch q.format {
	case "table", "json", "csv":
	default:
		return f, nil, fmt.Errorf("--format %q: want table, json or csv", q.format)
	}
	if q.by == "" && (q.top != 0 || q.sortBy != "") {
		return f, nil, errors.New("--top and --sort need --by (user, agent, client, entity, decision, tool or ip)")
	}
	if q.by != "" && !slices.Contains(audit.RollupKeys(), audit.RollupKey(q.by)) {
		return f, nil, fmt.Errorf("--by %q: want user, agent, client, entity, decision, tool or ip", q.by)
	}
	if q.top < 0 {
		return f, nil, fmt.Errorf("--top %d: want a positive number of rows (0: all)", q.top)
	}
	if q.sortBy == "" {
		q.sortBy = "calls"
	}
	if q.by != "" && !slices.Contains(audit.RollupSorts(), q.sortBy) {
		return f, nil, fmt.Errorf("--sort %q: want one of %s", q.sortBy, strings.Join(audit.RollupSorts(), ", "))
	}
	return f, loc, checkEnums(f)
}

func checkEnums(f audit.Filter) error {
	if f.Decision != "" && !audit.KnownDecision(f.Decision) {
		return fmt.Errorf("--decision %q: want allowed, scope_denied, hidden_by_policy, rate_limited, refused, failed or deny", f.Decision)
	}
	if f.Type != "" && !f.Type.Valid() {
		return fmt.Errorf("--type %q: want call, auth_failure, session, server_start, server_stop, policy_reload, checkpoint or retention", f.Type)
	}
	return nil
}

// parseIP reads an address or a CIDR range.
func parseIP(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--ip %q: want an address (192.0.2.7, 2001:db8::1) or a range (192.0.2.0/24)", s)
}

// parseZone reads --tz: empty or Local for the local zone, an IANA name, or
// a fixed offset such as +05:30 or -08:00.
func parseZone(s string) (*time.Location, error) {
	switch s {
	case "", "Local", "local":
		return time.Local, nil
	case "UTC", "utc", "Z":
		return time.UTC, nil
	}
	if t, err := time.Parse("-07:00", s); err == nil {
		_, off := t.Zone()
		return time.FixedZone(s, off), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("--tz %q: want Local, UTC, an IANA zone name (Europe/Paris) or an offset (+05:30)", s)
	}
	return loc, nil
}

// parseWhen reads an absolute time (RFC 3339 with its zone, or a date or
// date and time without one, taken in loc) or an age relative to now (a
// Go duration, or N followed by d for days).
func parseWhen(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want a date (2025-03-01), a local date and time (2025-03-01T09:00), RFC 3339 with a zone (2025-03-01T09:00:00Z) or an age (90m, 24h, 7d)", s)
}

// zoneLabel names loc for a column header, e.g. "UTC", "CET" or "+0530".
func zoneLabel(loc *time.Location) string {
	name, _ := time.Now().In(loc).Zone()
	return name
}

func printRecords(w io.Writer, recs []audit.Record, format string, loc *time.Location) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for i := range recs {
			if err := enc.Encode(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		return recordsCSV(w, recs, loc)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// With the records of several replicas, a REPLICA column says whose
	// chain (and seq) each record belongs to.
	replicas := map[string]bool{}
	for i := range recs {
		replicas[recs[i].Replica] = true
	}
	fleet := len(replicas) > 1
	if fleet {
		fmt.Fprint(tw, "REPLICA\t")
	}
	fmt.Fprintf(tw, "TIME (%s)\tSEQ\tTYPE\tUSER\tAGENT\tTOOL\tDECISION\tENTITIES\tMS\tRULE / REASON\n", zoneLabel(loc))
	for i := range recs {
		r := &recs[i]
		why := r.Rule
		if r.Reason != "" {
			why = strings.TrimPrefix(why+": "+r.Reason, ": ")
		}
		if r.Source != "" {
			why += " from " + r.Source
		}
		if r.Count > 1 {
			why += fmt.Sprintf(" (×%d)", r.Count)
		}
		if fleet {
			fmt.Fprintf(tw, "%s\t", cell(dash(r.Replica), 24))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\n",
			r.Time.In(loc).Format("2006-01-02 15:04:05"), r.Seq, r.Type,
			cell(audit.UserLabel(r.User), 32), cell(audit.AgentLabel(r.Agent), 24),
			cell(dash(r.Tool), 32), dash(string(r.Decision.Canonical())), entities(r.Entities),
			r.DurationMs, cell(dash(why), 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d record(s)\n", len(recs))
	return nil
}

// recordsCSV writes one row per record.
func recordsCSV(w io.Writer, recs []audit.Record, loc *time.Location) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "seq", "replica", "type", "user_email", "user_ref", "user_sub",
		"agent_client_id", "client_name", "client_version", "session", "transport", "tool", "decision",
		"rule", "reason", "entity_count", "entity_refs", "redactions", "redaction_total",
		"upstream_status", "duration_ms", "result_bytes", "source", "count", "trace_id",
		"issuer", "token_id", "user_agent", "stage", "limiter", "hidden", "redacted", "argument_redactions"})
	for i := range recs {
		r := &recs[i]
		rules, argRules := ruleCounts(r.Redactions), ruleCounts(r.ArgumentRedactions)
		where := make([]string, 0, len(r.Redacted))
		for _, d := range r.Redacted {
			where = append(where, fmt.Sprintf("%s@%s#%s=%d", d.Rule, d.Ref, d.Path, d.Count))
		}
		row := []string{r.Time.In(loc).Format(time.RFC3339Nano), strconv.FormatUint(r.Seq, 10), r.Replica, string(r.Type),
			r.User.Email, r.User.Ref, r.User.Sub, r.Agent.ClientID, r.Agent.Name, r.Agent.Version,
			r.SessionID, r.Transport, r.Tool, string(r.Decision), r.Rule, r.Reason,
			strconv.Itoa(r.Entities.Count), strings.Join(r.Entities.Refs, " "), strings.Join(rules, " "),
			strconv.Itoa(r.RedactionTotal()), strconv.Itoa(r.UpstreamStatus),
			strconv.FormatFloat(r.DurationMs, 'f', -1, 64), strconv.Itoa(r.ResultBytes), r.Source,
			strconv.Itoa(max(r.Count, 1)), r.TraceID,
			r.User.Issuer, r.User.TokenID, r.UserAgent, r.Stage, r.Limiter, strconv.Itoa(r.Hidden),
			strings.Join(where, " "), strings.Join(argRules, " ")}
		if err := cw.Write(safeCells(row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ruleCounts is a per-rule count as sorted "rule=n" cells.
func ruleCounts(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for rule, n := range m {
		out = append(out, rule+"="+strconv.Itoa(n))
	}
	slices.Sort(out)
	return out
}

// safeCells keeps a spreadsheet from running a cell as a formula: text
// that starts with = + - @ or a tab or carriage return gets a leading '.
// The values are caller-controlled (tool names, client names, reasons).
func safeCells(row []string) []string {
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			if _, err := strconv.ParseFloat(c, 64); err != nil {
				row[i] = "'" + c
			}
		}
	}
	return row
}

// printRollup prints the rows of summary --by.
func printRollup(w io.Writer, by string, rows []audit.RollupRow, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []audit.RollupRow{}
		}
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{by, "calls", "users", "entities", "denied", "hidden", "rate_limited", "refused", "errors", "redactions", "p50_ms", "p95_ms"})
		for _, r := range rows {
			_ = cw.Write(safeCells([]string{r.Key, strconv.Itoa(r.Calls), strconv.Itoa(r.Users), strconv.Itoa(r.Entities),
				strconv.Itoa(r.Denied), strconv.Itoa(r.Hidden), strconv.Itoa(r.RateLimited), strconv.Itoa(r.Refused), strconv.Itoa(r.Errors), strconv.Itoa(r.Redactions),
				strconv.FormatFloat(r.P50Ms, 'f', -1, 64), strconv.FormatFloat(r.P95Ms, 'f', -1, 64)}))
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tCALLS\tUSERS\tENTITIES\tDENIED\tHIDDEN\tRATE-LIMITED\tREFUSED\tERRORS\tREDACTIONS\tP50 MS\tP95 MS\n", strings.ToUpper(by))
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\n", cell(r.Key, 48),
			r.Calls, r.Users, r.Entities, r.Denied, r.Hidden, r.RateLimited, r.Refused, r.Errors, r.Redactions, r.P50Ms, r.P95Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d row(s)\n", len(rows))
	return nil
}

func printSummary(w io.Writer, rows []audit.SummaryRow, format string) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"user", "agent", "tool", "calls", "denied", "hidden", "rate_limited", "refused", "errors", "redactions", "p50_ms", "p95_ms"})
		for _, r := range rows {
			_ = cw.Write(safeCells([]string{r.User, r.Agent, r.Tool, strconv.Itoa(r.Calls), strconv.Itoa(r.Denied), strconv.Itoa(r.Hidden),
				strconv.Itoa(r.RateLimited), strconv.Itoa(r.Refused), strconv.Itoa(r.Errors), strconv.Itoa(r.Redactions),
				strconv.FormatFloat(r.P50Ms, 'f', -1, 64), strconv.FormatFloat(r.P95Ms, 'f', -1, 64)}))
		}
		cw.Flush()
		return cw.Error()
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []audit.SummaryRow{}
		}
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tAGENT\tTOOL\tCALLS\tDENIED\tHIDDEN\tRATE-LIMITED\tREFUSED\tERRORS\tREDACTIONS\tP50 MS\tP95 MS")
	var total audit.SummaryRow
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\n",
			cell(r.User, 32), cell(r.Agent, 24), cell(r.Tool, 32),
			r.Calls, r.Denied, r.Hidden, r.RateLimited, r.Refused, r.Errors, r.Redactions, r.P50Ms, r.P95Ms)
		total.Calls += r.Calls
		total.Denied += r.Denied
		total.Hidden += r.Hidden
		total.RateLimited += r.RateLimited
		total.Refused += r.Refused
		total.Errors += r.Errors
		total.Redactions += r.Redactions
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\n",
		total.Calls, total.Denied, total.Hidden, total.RateLimited, total.Refused, total.Errors, total.Redactions)
	return tw.Flush()
}

func entities(e audit.Entities) string {
	switch {
	case e.Count == 0:
		return "-"
	case e.Count == 1 && len(e.Refs) == 1:
		return cell(e.Refs[0], 40)
	case len(e.Refs) > 0:
		return fmt.Sprintf("%d (%s, …)", e.Count, cell(e.Refs[0], 32))
	}
	return strconv.Itoa(e.Count)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell shortens s to n runes and removes characters that would break the
// table (tabs, newlines, other control characters).
func cell(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

const keygenHelp = `Usage: backstage-mcp audit keygen PRIVATE.pem

Makes an Ed25519 key pair for signed audit checkpoints: PRIVATE.pem (PKCS #8
"PRIVATE KEY", mode 0600) for audit.checkpoint.keyFile, and PRIVATE.pub.pem
(PKIX "PUBLIC KEY") for reviewers' "audit verify --key". Refuses to overwrite
an existing file. The same files with openssl:

  openssl genpkey -algorithm ed25519 -out audit-key.pem
  openssl pkey -in audit-key.pem -pubout -out audit-key.pub.pem
`

// auditKeygen implements `backstage-mcp audit keygen`.
func auditKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	files, code := parseFlags(fs, args, keygenHelp, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "backstage-mcp audit keygen: want one file name, got %d\n\n%s", len(files), keygenHelp)
		return 2
	}
	priv := files[0]
	pub := strings.TrimSuffix(priv, ".pem") + ".pub.pem"
	privPEM, pubPEM, err := audit.GenerateKey()
	if err == nil {
		err = writeNew(priv, privPEM, 0o600)
	}
	if err == nil {
		err = writeNew(pub, pubPEM, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit keygen: %v\n", err)
		return 1
	}
	keys, err := audit.LoadVerifyKeys(pub)
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp audit keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "private key: %s (audit.checkpoint.keyFile; keep it to the server)\npublic key:  %s (audit verify --key)\nkey id:      %s\n", priv, pub, audit.KeyID(keys[0]))
	return 0
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
