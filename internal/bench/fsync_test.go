package bench

import (
	"os"
	"testing"
)

func TestMeasureFsync(t *testing.T) {
	dir := t.TempDir()
	got, err := measureFsync(dir)
	if err != nil {
		t.Fatalf("measureFsync: %v", err)
	}
	if got.Samples != fsyncSamples || got.P50Ms <= 0 || got.P99Ms < got.P50Ms || got.MaxMs < got.P99Ms {
		t.Errorf("measureFsync = %+v, want %d ordered positive samples", got, fsyncSamples)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("data folder after measureFsync has %d entries (%v), want none", len(entries), err)
	}
}
