package main

import (
	"context"
	"fmt"
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

// scenario is one question type measured on some paths.
type scenario struct {
	name  string
	paths []string
	// list returns the question for index i; offsets carry on across
	// phases of the same path so distinct questions stay distinct.
	list func(i int64) question
	size int64
}

func (b *bench) scenarios(qs questionSet) []scenario {
	return []scenario{
		{name: "get entity, distinct refs (uncached)", paths: []string{"ours", "peer", "rest"}, size: int64(len(qs.distinct)),
			list: func(i int64) question { return question{Kind: qGet, Ref: qs.distinct[i%int64(len(qs.distinct))]} }},
		{name: fmt.Sprintf("get entity, hot set of %d (repeated)", len(qs.hot)), paths: []string{"ours", "peer", "rest"}, size: int64(len(qs.hot)),
			list: func(i int64) question { return question{Kind: qGet, Ref: qs.hot[i%int64(len(qs.hot))]} }},
		{name: "search kind+owner, limit 20", paths: []string{"ours", "peer", "rest"}, size: int64(len(qs.searches)),
			list: func(i int64) question { return qs.searches[i%int64(len(qs.searches))] }},
		{name: "get relations, depth 1 (ours only)", paths: []string{"ours"}, size: int64(len(qs.components)),
			list: func(i int64) question {
				return question{Kind: qRelations, Ref: qs.components[i%int64(len(qs.components))]}
			}},
		{name: "find owner (ours only)", paths: []string{"ours"}, size: int64(len(qs.components)),
			list: func(i int64) question {
				return question{Kind: qOwner, Ref: qs.components[(i+int64(len(qs.components))/2)%int64(len(qs.components))]}
			}},
	}
}

// loadPhases runs every scenario × concurrency × path.
func (b *bench) loadPhases(ctx context.Context, paths []*pathSet, qs questionSet) error {
	byName := map[string]*pathSet{}
	for _, p := range paths {
		byName[p.name] = p
	}
	for _, sc := range b.scenarios(qs) {
		offset := map[string]int64{}
		for _, conc := range b.o.conc {
			for _, pn := range sc.paths {
				p := byName[pn]
				base := offset[pn]
				next := func(i int64) question { return sc.list(base + i) }
				r := runPhase(ctx, p.callers, conc, next, b.o.warmup, b.o.phase)
				if err := ctx.Err(); err != nil {
					return err
				}
				offset[pn] = base + r.Asked
				r.Scenario, r.Path = sc.name, pn
				b.res.Phases = append(b.res.Phases, r)
				b.log.Info("phase", "scenario", sc.name, "path", pn, "concurrency", conc,
					"calls", r.Calls, "failures", r.Failures, "p50_ms", round(r.P50Ms, 2), "p99_ms", round(r.P99Ms, 2), "calls/s", round(r.CallsPerSec, 1))
				if r.FirstError != "" {
					b.log.Warn("phase had failures", "path", pn, "first_error", r.FirstError)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	return nil
}
