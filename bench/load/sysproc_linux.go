package main

import "syscall"

// childAttr puts a child in its own process group, so that a Ctrl-C at the
// terminal reaches only this program, which then stops its children in
// order; and has the kernel kill the child if this program dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
