package mirror

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// A full sync decodes, checks and indexes every entity, and allocates
// about 10 bytes of garbage for every byte it keeps (the decoded maps, the
// re-encoding, the flattened index rows). Paced by the runtime alone
// (GOGC=100) the heap reaches twice what the sync keeps before each
// collection, and the freed spans stay mapped, so that a first full sync
// of 100,000 entities peaked at 2.0x its live heap and 618 MiB of RSS.
//
// The pacer bounds the peak instead, with no process-wide setting (no
// memory limit, no GOGC change). It knows how many entities the sync will
// hold (Backstage's totalItems) and learns, from each collection, how many
// live bytes an entity costs; so it can tell the live heap the finished
// copy will need, and it lets the heap hold up to (1 + HeapGrowth) times
// that, plus a small slack, before it collects and returns the freed
// memory to the system (debug.FreeOSMemory, on the sync's own goroutine,
// which is the allocator; calls being served go on meanwhile). Early in
// the sync that bound is far above the live heap, so collections are rare;
// they come closer together as the copy nears its size, about 30 in all
// at the default (against about 40 smaller ones by the runtime's pacing).
// Every few entities it reads the heap's size from runtime/metrics, which
// stops nothing. Measured costs: docs/mirror.md.

// DefaultHeapGrowth is the default Config.HeapGrowth.
const DefaultHeapGrowth = 0.05

// paceSlack is added to the pacer's bound so that a small catalog is not
// collected every few entities.
const paceSlack = 4 << 20

// paceEvery is how many entities a full sync indexes between two looks at
// the heap.
const paceEvery = 64

type heapPacer struct {
	growth float64
	// samples: heap objects (live and garbage), live bytes at the last
	// collection, collections so far.
	samples []metrics.Sample
	// base is the live heap when the sync began, cycles the collections
	// by then.
	base, cycles uint64
	// total is how many entities the sync expects (0: unknown); added how
	// many it has indexed.
	total, added int
	// collections counts the collections the pacer forced.
	collections int
}

// newHeapPacer returns a pacer that keeps the heap within (1+growth)
// times the finished copy's live size, or nil (no pacing) when growth is
// negative. It collects once to learn the live heap the sync starts from.
func newHeapPacer(growth float64) *heapPacer {
	if growth < 0 {
		return nil
	}
	p := &heapPacer{growth: growth, samples: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}}
	runtime.GC()
	if !p.read() {
		return nil // a runtime without these metrics: its own pacing only
	}
	p.base, p.cycles = p.samples[1].Value.Uint64(), p.samples[2].Value.Uint64()
	return p
}

func (p *heapPacer) read() bool {
	metrics.Read(p.samples)
	for _, s := range p.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return false
		}
	}
	return true
}

// expect tells the pacer how many entities the sync will hold.
func (p *heapPacer) expect(total int) {
	if p != nil && total > 0 {
		p.total = total
	}
}

// indexed tells the pacer that n more entities are indexed, and collects
// when the heap has outgrown its bound.
func (p *heapPacer) indexed(n int) {
	if p == nil {
		return
	}
	p.added += n
	p.step()
}

// step collects when the heap has outgrown its bound.
func (p *heapPacer) step() {
	if p == nil || !p.read() {
		return
	}
	if p.over(p.samples[0].Value.Uint64(), p.samples[1].Value.Uint64(), p.samples[2].Value.Uint64()) {
		debug.FreeOSMemory()
		p.collections++
	}
}

// over reports whether a heap holding objects bytes (live or garbage),
// of which live were live at the last collection, the cycles-th since the
// process began, has outgrown the pacer's bound.
func (p *heapPacer) over(objects, live, cycles uint64) bool {
	need := float64(live)
	// Once a collection has seen some of the copy, project the finished
	// copy's live heap from what an entity has cost so far. Entities added
	// since that collection are counted too, so the projection errs low
	// (more collections, never a higher peak).
	if p.total > 0 && p.added > 0 && cycles > p.cycles && live > p.base {
		perEntity := float64(live-p.base) / float64(p.added)
		need = max(need, float64(p.base)+perEntity*float64(max(p.total, p.added)))
	}
	return float64(objects) > need*(1+p.growth)+paceSlack
}
