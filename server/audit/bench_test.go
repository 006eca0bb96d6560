package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncEvery, SyncInterval, SyncNone} {
		for _, parallel := range []bool{false, true} {
			name := string(policy) + "/serial"
			if parallel {
				name = string(policy) + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				l, err := Open(Config{Path: filepath.Join(b.TempDir(), "audit.log"), Sync: policy})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.SetParallelism(8) // 8×GOMAXPROCS appenders: shows group commit
					b.RunParallel(func(pb *testing.PB) {
						for i := 0; pb.Next(); i++ {
							if err := l.Append(ctx, callRecord(i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						if err := l.Append(ctx, callRecord(i)); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkAppendConcurrent measures calls/s under SyncEvery with c
// goroutines appending at once (c1, c16, c64), as the server sees them
// under concurrent tool calls. Every Append returns only after its record
// is durable, so records/s is the audited-calls/s ceiling of one replica.
//
//	go test ./server/audit -run '^$' -bench 'AppendConcurrent' -benchtime 2s -count 3
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("every/c%d", c), func(b *testing.B) {
			l, err := Open(Config{Path: filepath.Join(b.TempDir(), "audit.log"), Sync: SyncEvery})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range c {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := l.Append(ctx, callRecord(int(i))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
