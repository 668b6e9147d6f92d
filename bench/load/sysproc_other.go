//go:build !linux

package main

import "syscall"

// childAttr returns nil: the load test measures through /proc and runs on
// Linux only; on other systems it stops at its first reading of /proc.
func childAttr() *syscall.SysProcAttr { return nil }
