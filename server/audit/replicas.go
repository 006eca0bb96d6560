package audit

import (
	"cmp"
	"errors"
	"path/filepath"
	"slices"
)

// Chain is the files of one replica: one hash chain.
type Chain struct {
	// Replica is the Record.Replica of the chain's records ("" for records
	// written before replica names existed).
	Replica string `json:"replica"`
	// Files are the chain's files, in the order given.
	Files []string `json:"files"`
}

// Chains groups files by the replica named in their first record, sorted
// by replica name. A file without any record joins the chain of the other
// files of the same audit path (audit.log with its rotated
// audit.log.<timestamp>), or a chain of its own.
func Chains(files []string) ([]Chain, error) {
	if len(files) == 0 {
		return nil, errors.New("audit: no files given")
	}
	byReplica := map[string][]string{}
	replicaOfBase := map[string]string{}
	var empty []string
	seen := map[string]bool{}
	for _, f := range files {
		clean := filepath.Clean(f)
		if seen[clean] {
			continue
		}
		seen[clean] = true
		r, ok, err := firstRecord(f)
		if err != nil {
			return nil, err
		}
		if !ok {
			empty = append(empty, f)
			continue
		}
		byReplica[r.Replica] = append(byReplica[r.Replica], f)
		replicaOfBase[activePath(f)] = r.Replica
	}
	for _, f := range empty {
		r, ok := replicaOfBase[activePath(f)]
		if !ok {
			r = "(no records) " + f
		}
		byReplica[r] = append(byReplica[r], f)
	}
	out := make([]Chain, 0, len(byReplica))
	for r, fs := range byReplica {
		out = append(out, Chain{Replica: r, Files: fs})
	}
	slices.SortFunc(out, func(a, b Chain) int { return cmp.Compare(a.Replica, b.Replica) })
	return out, nil
}

// activePath is the active file a (possibly rotated) audit file belongs to.
func activePath(f string) string {
	dir, base := filepath.Split(f)
	for i := len(base) - 1; i > 0; i-- {
		if base[i] == '.' && rotatedSuffix.MatchString(base[i:]) {
			return filepath.Join(dir, base[:i])
		}
	}
	return filepath.Clean(f)
}

// firstRecord returns the first line of file that parses as a record.
func firstRecord(file string) (*Record, bool, error) {
	s := newStream([]string{file})
	defer s.close()
	for {
		e, ok, err := s.next()
		if err != nil || !ok {
			return nil, false, err
		}
		if e.tooLong {
			continue
		}
		if r, err := parseLine(e.line); err == nil {
			return r, true, nil
		}
	}
}

// ChainResult is the verification of one replica's chain.
type ChainResult struct {
	// Replica names the chain.
	Replica string `json:"replica"`
	VerifyResult
}

// FleetResult is the verification of the files of several replicas.
type FleetResult struct {
	// OK is true when every chain verifies.
	OK bool `json:"ok"`
	// Records is the number of good records over all chains.
	Records int `json:"records"`
	// Files is the number of files over all chains.
	Files int `json:"files"`
	// Chains are the per-replica results, sorted by replica.
	Chains []ChainResult `json:"chains"`
}

// VerifyFleet verifies the files of several replicas: files are grouped
// into one chain per replica (see Chains) and each chain is verified on
// its own, so the records of two replicas are never read as one
// (reordered) chain. Anchors name one chain's records, so they are only
// accepted when the files form a single chain.
func VerifyFleet(opts VerifyOptions, files ...string) (FleetResult, error) {
	chains, err := Chains(files)
	if err != nil {
		return FleetResult{}, err
	}
	if len(opts.Anchors) > 0 && len(chains) > 1 {
		return FleetResult{}, errors.New("audit: an anchor belongs to one replica's chain, but the files hold several; verify each replica's files with its own anchor")
	}
	res := FleetResult{OK: true}
	for _, c := range chains {
		vr, err := VerifyWithOptions(opts, c.Files...)
		if err != nil {
			return res, err
		}
		res.Chains = append(res.Chains, ChainResult{Replica: c.Replica, VerifyResult: vr})
		res.OK = res.OK && vr.OK
		res.Records += vr.Records
		res.Files += len(vr.Files)
	}
	return res, nil
}
