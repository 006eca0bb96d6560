//go:build !linux

package audit

import "os"

// dataSyncer returns f itself: fsync(2) where fdatasync(2) is not offered.
func dataSyncer(f *os.File) syncer { return f }
