// Command toolchain builds the project's pinned tools from the Go module
// proxy into the cache (once) and prints NAME=PATH and NAME_VERSION=VERSION
// for each:
//
//	go run ./cmd/toolchain [all | TOOL...]
//
// Progress goes to stderr, one line per build; the go command's own output
// stays in the cache's logs/ folder unless a build fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fastapi-infra/fastapi-infra/toolchain"
)

func main() {
	names := os.Args[1:]
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		names = nil
		for _, t := range toolchain.Tools() {
			names = append(names, t.Name)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := toolchain.Builder{Progress: os.Stderr}
	paths, err := b.Ensure(ctx, names...)
	if err != nil {
		fail(err)
	}
	for _, name := range names {
		t, _ := toolchain.Lookup(name)
		fmt.Printf("%s=%s\n%s_VERSION=%s\n", t.Key, paths[name], t.Key, t.Version)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "toolchain:", err)
	os.Exit(1)
}
