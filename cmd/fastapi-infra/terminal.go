package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fastapi-infra/fastapi-infra/deploy"
	"github.com/fastapi-infra/fastapi-infra/stacks"
)

// terminal is where the driver asks before it changes anything.
type terminal struct {
	in     io.Reader
	out    io.Writer
	reader *bufio.Reader // one for every question: it may read ahead
}

// interactive says whether there is a person to ask: stdin is a terminal.
func (t *terminal) interactive() bool {
	f, ok := t.in.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ask prints question and returns the answer's first line, trimmed.
func (t *terminal) ask(question string) string {
	fmt.Fprint(t.out, question)
	if t.reader == nil {
		t.reader = bufio.NewReader(t.in)
	}
	line, _ := t.reader.ReadString('\n')
	return strings.TrimSpace(line)
}

var errDeclined = errors.New("nothing was changed: the answer was not yes")

// canAsk is every change's first check: with --yes nobody is asked;
// without it there must be a terminal, or the verb stops before anything,
// saying so. what says what the verb does ("up changes").
func (t *terminal) canAsk(g *globals, what, stack string) error {
	if g.yes || t.interactive() {
		return nil
	}
	return fmt.Errorf("%s stack %s and there is no terminal to ask on; run it with --yes to go ahead without asking (CI)", what, stack)
}

// confirm is every change's question (after canAsk): --yes answers it.
func (t *terminal) confirm(g *globals, question string) error {
	if g.yes {
		return nil
	}
	if answer := t.ask(question); answer != "yes" && answer != "y" {
		return errDeclined
	}
	return nil
}

// productionName is the question --yes never answers: a production
// stack's destroy or restore goes ahead only for someone who types its name
// (on stdin, without a terminal: `echo prod | ./infra destroy prod --yes`).
// what is the verb's action, "destroy it".
func (t *terminal) productionName(target deploy.Target, what string) error {
	if target.Config[stacks.FullKey("environment")].Value != "production" {
		return nil
	}
	if answer := t.ask(fmt.Sprintf("%s is a production stack. Type its name to %s: ", target.Name(), what)); answer != target.Name() {
		return fmt.Errorf("nothing was changed: %q is not the stack's name", answer)
	}
	return nil
}
