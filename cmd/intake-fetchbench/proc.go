package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// readProcStatus returns VmRSS and VmHWM (the peak of VmRSS) of this
// process in bytes, from /proc/self/status.
func readProcStatus() (rss, hwm int64, err error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read the process's memory: %w (the benchmark needs Linux's /proc)", err)
	}
	return parseProcStatus(data)
}

// parseProcStatus reads VmRSS and VmHWM (in kB) of a /proc/{pid}/status
// file, in bytes.
func parseProcStatus(data []byte) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" && name != "VmHWM" {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/self/status: malformed line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/self/status: malformed line %q: %w", sc.Text(), err)
		}
		if name == "VmRSS" {
			rss, haveRSS = kb<<10, true
		} else {
			hwm, haveHWM = kb<<10, true
		}
	}
	if !haveRSS || !haveHWM {
		return 0, 0, fmt.Errorf("/proc/self/status has no VmRSS or VmHWM line")
	}
	return rss, hwm, nil
}
