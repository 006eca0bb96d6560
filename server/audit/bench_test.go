package audit

import (
	"context"
	"path/filepath"
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
