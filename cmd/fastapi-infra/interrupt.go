package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// forwardInterrupts passes Ctrl-C (and SIGTERM) on to the Pulumi CLI this
// process runs, which cancels as `pulumi up` does on a terminal: it lets
// the steps in flight finish, writes the state and releases the stack; a
// second interrupt stops it at once. The SDK starts the CLI in a process
// group of its own, so the terminal's signal never reaches it, and it would
// kill the CLI 10 s after a cancelled context, mid-step, leaving pending
// operations behind; this process keeps running until the CLI is done.
func forwardInterrupts(out io.Writer) (stop func()) {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		count := 0
		for {
			select {
			case <-done:
				return
			case <-signals:
			}
			count++
			clis := childProcesses("pulumi")
			switch {
			case len(clis) == 0 && runCleanup():
				releaseLocks()
				fmt.Fprintln(out, "\nfastapi-infra: interrupted")
				os.Exit(130)
			case len(clis) == 0:
				releaseLocks()
				fmt.Fprintln(out, "\nfastapi-infra: interrupted before the engine started; nothing was changed")
				os.Exit(130)
			case count == 1:
				fmt.Fprintln(out, "\nfastapi-infra: stopping: the engine finishes the steps in flight and releases the stack (Ctrl-C again to stop at once)")
			}
			for _, pid := range clis {
				_ = syscall.Kill(pid, syscall.SIGINT)
			}
		}
	}()
	return func() { signal.Stop(signals); close(done) }
}

// childProcesses are this process's children whose executable is named
// name, read from /proc.
func childProcesses(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == self && s[open+1:close] == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cleanup is what a verb that runs no engine leaves to undo when it is
// interrupted (exec's one-off container); set with onInterrupt.
var cleanup struct {
	sync.Mutex
	undo func()
}

// onInterrupt sets what an interrupt undoes before the driver exits; nil
// clears it.
func onInterrupt(undo func()) {
	cleanup.Lock()
	defer cleanup.Unlock()
	cleanup.undo = undo
}

// runCleanup runs the interrupt's undo, if any, and says whether it ran.
func runCleanup() bool {
	cleanup.Lock()
	defer cleanup.Unlock()
	if cleanup.undo == nil {
		return false
	}
	cleanup.undo()
	return true
}

// locks are the stack locks this process holds outside the engine
// (backup's, restore's): an interrupt exits without running defers, and a
// lock left behind would refuse every later up until `pulumi cancel`.
var locks struct {
	sync.Mutex
	held map[int]func()
	next int
}

// holdLock registers unlock for an interrupt and returns the release to
// defer: it unlocks once, whichever comes first.
func holdLock(unlock func()) (release func()) {
	locks.Lock()
	defer locks.Unlock()
	if locks.held == nil {
		locks.held = map[int]func(){}
	}
	id := locks.next
	locks.next++
	once := sync.OnceFunc(unlock)
	locks.held[id] = once
	return func() {
		locks.Lock()
		delete(locks.held, id)
		locks.Unlock()
		once()
	}
}

// releaseLocks unlocks every lock still held.
func releaseLocks() {
	locks.Lock()
	defer locks.Unlock()
	for id, unlock := range locks.held {
		unlock()
		delete(locks.held, id)
	}
}
