package main

import "syscall"

// childAttr makes a child process receive SIGTERM when the benchmark dies,
// so that no server outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
