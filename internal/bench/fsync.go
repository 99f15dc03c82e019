package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// fsyncSamples is the number of synchronous writes that measureFsync times.
const fsyncSamples = 200

// measureFsync times fsyncSamples writes of 4 KiB to a file in dir, each followed by
// fsync, which is what every SQLite commit waits for. It removes the file.
func measureFsync(dir string) (Latency, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return Latency{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	block := make([]byte, 4096)
	durations := make([]int64, 0, fsyncSamples)
	for i := range fsyncSamples {
		start := time.Now()
		if _, err := f.WriteAt(block, int64(i)*int64(len(block))); err != nil {
			return Latency{}, fmt.Errorf("write %s: %w", filepath.Base(f.Name()), err)
		}
		if err := f.Sync(); err != nil {
			return Latency{}, fmt.Errorf("fsync %s: %w", filepath.Base(f.Name()), err)
		}
		durations = append(durations, int64(time.Since(start)))
	}
	return latencyOf(durations), nil
}
