package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process of the benchmark: nats-server, the API or the
// scheduler, its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // the exit status; set before done closes
}

// startProc starts bin with args, stdout and stderr into logPath.
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: create its log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "INTAKE_BOOTSTRAP_TOKEN="+benchAdminToken, "INTAKE_WORKER_TOKEN="+benchWorkerToken)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports an error when the process has ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); see %s", p.name, p.err, p.log.Name())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills the
// process. It returns the exit error of a process that did not stop cleanly.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor calls ok every 200ms until it returns nil, p exits, ctx ends or
// timeout passes; it returns the last error of ok then.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, ok func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ok(ctx)
		if err == nil {
			return nil
		}
		if perr := p.exited(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s within %v: %w (see %s)", p.name, what, timeout, err, p.log.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dialOK succeeds when addr accepts TCP connections.
func dialOK(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// httpOK succeeds when GET url answers 200.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// memStatus is a process's resident memory from /proc/{pid}/status.
type memStatus struct {
	RSS  int64 // VmRSS: resident now, bytes
	Peak int64 // VmHWM: the most resident since start, bytes
}

// readMem reads VmRSS and VmHWM of pid (Linux).
func readMem(pid int) (memStatus, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memStatus{}, fmt.Errorf("read the memory of process %d: %w", pid, err)
	}
	defer f.Close()
	return parseMemStatus(f)
}

// parseMemStatus reads VmRSS and VmHWM from the text of /proc/{pid}/status.
func parseMemStatus(r io.Reader) (memStatus, error) {
	var m memStatus
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return memStatus{}, fmt.Errorf("%s: unexpected value %q (want \"N kB\")", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return memStatus{}, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.Peak = kb * 1024
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return memStatus{}, err
	}
	if seen != 2 {
		return memStatus{}, errors.New("no VmRSS and VmHWM lines (not Linux?)")
	}
	return m, nil
}

// clockTicks is the unit of the times in /proc/{pid}/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTicks = 100

// cpuTimes reads /proc/{pid}/stat: the CPU seconds of the process itself
// (utime + stime) and of its waited-for children (cutime + cstime).
func cpuTimes(pid int) (self, children float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat reads utime, stime, cutime and cstime from the text of
// /proc/{pid}/stat (fields 14 to 17; the command name, field 2, may hold
// spaces and parentheses, so fields are counted from its last ')').
func parseStat(s string) (self, children float64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("stat: %d fields after the command name, want at least 15", len(f))
	}
	var t [4]float64
	for k := range t {
		v, err := strconv.ParseFloat(f[11+k], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("stat field %d: %w", 14+k, err)
		}
		t[k] = v / clockTicks
	}
	return t[0] + t[1], t[2] + t[3], nil
}

// processCPU is the CPU seconds of pid.
func processCPU(pid int) (float64, error) {
	self, _, err := cpuTimes(pid)
	return self, err
}

// treeCPU is the CPU seconds of pid and of every child it has or had (the
// backends of a PostgreSQL postmaster): its own, its reaped children's and
// its live children's.
func treeCPU(pid int) (float64, error) {
	self, reaped, err := cpuTimes(pid)
	if err != nil {
		return 0, err
	}
	total := self + reaped
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("list the children of process %d: %w", pid, err)
	}
	for _, k := range strings.Fields(string(kids)) {
		kid, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		if c, _, err := cpuTimes(kid); err == nil { // a child may exit meanwhile
			total += c
		}
	}
	return total, nil
}

// The credentials of the benchmark's processes (on this machine only):
// the API's bootstrap admin token, which the benchmark calls it with, and
// the scheduler's worker token.
const (
	benchAdminToken  = "schedbench-bootstrap-admin-token-0123456789"
	benchWorkerToken = "schedbench-worker-token-0123456789abcdefghij"
)
