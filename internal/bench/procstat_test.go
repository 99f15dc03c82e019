package bench

import (
	"os"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks.
	rest := " S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 12 0 100 2000 300"
	tests := []struct {
		name    string
		data    string
		want    float64
		wantErr string
	}{
		{"plain", "1234 (hookd)" + rest, 3, ""},
		{"name with spaces and parens", "1234 (my (odd) name)" + rest, 3, ""},
		{"no name", "1234 hookd S 1 2", 0, "no command name"},
		{"short", "1234 (hookd) S 1 2 3", 0, "fields after the command name"},
		{"not a number", "1234 (hookd) S 1 2 3 4 5 6 7 8 9 10 x 50 0", 0, "utime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseStatCPU error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestParseStatusMemory(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    memory
		wantErr bool
	}{
		{"both", "Name:\thookd\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n", memory{rss: 10 << 20, peakRSS: 20 << 20}, false},
		{"missing peak", "VmRSS:\t   10240 kB\n", memory{}, true},
		{"bad unit", "VmRSS:\t10240 MB\nVmHWM:\t1 kB\n", memory{}, true},
		{"kernel thread", "Name:\tkthreadd\nState:\tS\n", memory{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusMemory([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatusMemory error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseStatusMemory = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMachineBusy(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    float64
		wantErr bool
	}{
		// user 100, nice 20, system 50, idle 9000, iowait 300, irq 5, softirq 15, steal 10
		{"totals", "cpu  100 20 50 9000 300 5 15 10 0 0\ncpu0 50 10 25 4500 150 2 7 5 0 0\n", 2, false},
		{"per-CPU line first", "cpu0 50 10 25 4500 150 2 7 5 0 0\n", 0, true},
		{"short", "cpu  100 20 50\n", 0, true},
		{"not a number", "cpu  100 x 50 9000 300 5 15 10\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMachineBusy([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMachineBusy error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseMachineBusy = %v seconds, want %v", got, tt.want)
			}
		})
	}
}

func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	// Burn some CPU so that at least one clock tick is counted.
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	cpu, err := procCPUSeconds(0)
	if err != nil || cpu <= 0 {
		t.Errorf("procCPUSeconds(self) = %v, %v; want > 0 (x=%d)", cpu, err, x)
	}
	m, err := procMemory(os.Getpid())
	if err != nil || m.rss <= 0 || m.peakRSS < m.rss {
		t.Errorf("procMemory(self) = %+v, %v; want 0 < rss <= peak", m, err)
	}
}
