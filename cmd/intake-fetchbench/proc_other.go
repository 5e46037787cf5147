//go:build !linux

package main

import (
	"errors"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

func freeBytes(string) (int64, error) {
	return 0, errors.New("free disk space is only read on Linux")
}
