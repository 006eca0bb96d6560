package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// questionSet holds every question list, the same for all paths.
type questionSet struct {
	distinct   []entityRef // every entity, shuffled: uncached lookups
	hot        []entityRef // the hot set: repeated lookups
	searches   []question  // (kind, owner team) pairs, shuffled
	components []entityRef // components, shuffled: relations and owner
	apis       []entityRef
}

func (b *bench) questions(cat *genCatalog) questionSet {
	var qs questionSet
	all := cat.All()
	b.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	n := min(b.o.hot, len(all)/2)
	qs.hot = all[len(all)-n:]
	qs.distinct = all[:len(all)-n]
	for _, t := range cat.Teams {
		for _, k := range []string{"Component", "API", "Resource"} {
			qs.searches = append(qs.searches, question{Kind: qSearch, Team: t, Of: k})
		}
	}
	b.rng.Shuffle(len(qs.searches), func(i, j int) { qs.searches[i], qs.searches[j] = qs.searches[j], qs.searches[i] })
	qs.components = append(qs.components, cat.ByKind["component"]...)
	b.rng.Shuffle(len(qs.components), func(i, j int) { qs.components[i], qs.components[j] = qs.components[j], qs.components[i] })
	qs.apis = cat.ByKind["api"]
	return qs
}

// scenarioKeys name the scenarios for --scenarios, in the order of
// bench.scenarios.
var scenarioKeys = []string{"get", "search", "hot", "relations", "owner"}

// scenario is one question type measured on some paths.
type scenario struct {
	key   string // one of scenarioKeys
	name  string
	paths []string
	// everyScale is true for the scenarios measured at every catalog
	// size; the others run on the first size only.
	everyScale bool
	// list returns the question for index i; offsets carry on across
	// phases of the same path so distinct questions stay distinct.
	list func(i int64) question
	size int64
}

// Scenario names; the report finds phases by them.
const (
	scGet       = "get entity, distinct refs (uncached)"
	scSearch    = "search kind+owner, limit 20"
	scHot       = "get entity, hot set of" // … N (repeated)
	scRelations = "get relations, depth 1 (ours only)"
	scOwner     = "find owner (ours only)"
)

// comparedPaths are the paths of the main comparison: REST, the floor, the
// MCP floor, every backstage-mcp variant, and the peer.
func comparedPaths() []string {
	out := []string{pathRest, pathFloor, pathMCPFloor, pathMCPEmpty}
	out = append(out, oursNames()...)
	return append(out, pathPeer)
}

func (b *bench) scenarios(qs questionSet) []scenario {
	return []scenario{
		{key: "get", name: scGet, paths: comparedPaths(), everyScale: true, size: int64(len(qs.distinct)),
			list: func(i int64) question { return question{Kind: qGet, Ref: qs.distinct[i%int64(len(qs.distinct))]} }},
		{key: "search", name: scSearch, paths: comparedPaths(), everyScale: true, size: int64(len(qs.searches)),
			list: func(i int64) question { return qs.searches[i%int64(len(qs.searches))] }},
		{key: "hot", name: fmt.Sprintf("%s %d (repeated)", scHot, len(qs.hot)), paths: []string{"ours", pathPeer, pathRest}, size: int64(len(qs.hot)),
			list: func(i int64) question { return question{Kind: qGet, Ref: qs.hot[i%int64(len(qs.hot))]} }},
		{key: "relations", name: scRelations, paths: []string{"ours"}, size: int64(len(qs.components)),
			list: func(i int64) question {
				return question{Kind: qRelations, Ref: qs.components[i%int64(len(qs.components))]}
			}},
		{key: "owner", name: scOwner, paths: []string{"ours"}, size: int64(len(qs.components)),
			list: func(i int64) question {
				return question{Kind: qOwner, Ref: qs.components[(i+int64(len(qs.components))/2)%int64(len(qs.components))]}
			}},
	}
}

// loadPhases runs every scenario × concurrency × path on one catalog size.
func (b *bench) loadPhases(ctx context.Context, scale int, first bool, paths []*pathSet, qs questionSet) error {
	byName := map[string]*pathSet{}
	for _, p := range paths {
		byName[p.name] = p
	}
	for _, sc := range b.scenarios(qs) {
		if !first && !sc.everyScale || b.o.scenarios != nil && !b.o.scenarios[sc.key] {
			continue
		}
		offset := map[string]int64{}
		for _, conc := range b.o.conc {
			lim := phaseLimits{Warm: b.o.warmup, Dur: b.o.phase, MinCalls: max(b.o.minCalls, 2*conc), Max: b.o.phaseMax}
			runs := map[string][]phaseRun{}
			for rd := range b.o.rounds {
				// Odd rounds take the paths in reverse order, so that drift
				// (Backstage's heap, other load) does not favour a path.
				order := slices.Clone(sc.paths)
				if rd%2 == 1 {
					slices.Reverse(order)
				}
				for _, pn := range order {
					if pn == pathPeer && !first {
						continue // the peer is compared on the first size only
					}
					p := byName[pn]
					if p == nil {
						continue // not measured at this size (above --full-up-to)
					}
					base := offset[pn]
					next := func(i int64) question { return sc.list(base + i) }
					run := runPhase(ctx, p.callers, conc, next, lim)
					if err := ctx.Err(); err != nil {
						return err
					}
					offset[pn] = base + run.asked
					runs[pn] = append(runs[pn], run)
					time.Sleep(200 * time.Millisecond)
				}
			}
			for _, pn := range sc.paths {
				if len(runs[pn]) == 0 {
					continue
				}
				r := mergeRuns(conc, runs[pn])
				r.Scale, r.Scenario, r.Path = scale, sc.name, pn
				b.res.Phases = append(b.res.Phases, r)
				b.log.Info("phase", "scale", scale, "scenario", sc.name, "path", pn, "concurrency", conc,
					"calls", r.Calls, "failures", r.Failures, "window_s", round(r.Seconds, 1), "p50_ms", round(r.P50Ms, 2), "p90_ms", round(r.P90Ms, 2), "calls/s", round(r.CallsPerSec, 1))
				if r.FirstError != "" {
					b.failed.Store(true)
					b.log.Warn("phase had failures", "path", pn, "first_error", r.FirstError)
				}
				if r.Capped {
					b.log.Warn("phase reached --phase-max before counting --min-calls calls", "path", pn, "calls", r.Calls)
				}
			}
		}
	}
	return nil
}
