package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicksPerSecond is the unit of the CPU times in /proc/PID/stat, the kernel's USER_HZ
// (sysconf(_SC_CLK_TCK)). It is 100 on every architecture that Go supports on Linux.
const clockTicksPerSecond = 100

// procCPUSeconds returns the user plus system CPU time of the process pid, from
// /proc/PID/stat. pid 0 means the calling process.
func procCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat. The command name
// in field 2 is in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last closing parenthesis.
func parseStatCPU(data []byte) (float64, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse /proc stat %q: no command name in parentheses", data)
	}
	// After the command name come field 3 (state) onwards: utime is the 12th of them.
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(fields[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat utime %q: %w", fields[11], err)
	}
	stime, err := strconv.ParseUint(fields[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat stime %q: %w", fields[12], err)
	}
	return float64(utime+stime) / clockTicksPerSecond, nil
}

// machineBusySeconds returns the CPU time that all CPUs of the machine spent outside the
// idle and iowait states since boot, from the first line of /proc/stat.
func machineBusySeconds() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(data)
}

// parseMachineBusy sums user, nice, system, irq, softirq and steal of the "cpu" line of
// /proc/stat, which the kernel writes in clock ticks.
func parseMachineBusy(data []byte) (float64, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: first line %q is not the cpu totals", line)
	}
	var busy uint64
	for i, f := range fields[1:9] {
		ticks, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat field %d %q: %w", i+1, f, err)
		}
		if i != 3 && i != 4 { // idle and iowait
			busy += ticks
		}
	}
	return float64(busy) / clockTicksPerSecond, nil
}

// memory is a process's resident set size now (VmRSS) and at its peak (VmHWM), in bytes.
type memory struct {
	rss, peakRSS int64
}

// procMemory returns the resident memory of the process pid, from /proc/PID/status.
func procMemory(pid int) (memory, error) {
	data, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return memory{}, err
	}
	return parseStatusMemory(data)
}

// parseStatusMemory reads the VmRSS and VmHWM lines of /proc/PID/status, which the kernel
// writes in KiB ("VmRSS:	   12345 kB").
func parseStatusMemory(data []byte) (memory, error) {
	var (
		m     memory
		found int
	)
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return memory{}, fmt.Errorf("parse /proc status %s %q: want a number of kB", name, value)
		}
		kib, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse /proc status %s %q: %w", name, value, err)
		}
		if name == "VmRSS" {
			m.rss = kib << 10
		} else {
			m.peakRSS = kib << 10
		}
		found++
	}
	if found != 2 {
		return memory{}, fmt.Errorf("parse /proc status: VmRSS or VmHWM missing")
	}
	return m, nil
}

func procPath(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}
