//go:build e2e

package singleserver

import (
	"testing"

	"github.com/fastapi-infra/fastapi-infra/internal/dockerplan"
)

// What the external real-Docker tests (package singleserver_test, which
// may import the operations package that imports this one) use of the
// harness.

// RealServer is the real-Docker harness (realdocker_test.go).
type RealServer = realServer

func NewRealServer(t *testing.T, targets ...string) *RealServer { return newRealServer(t, targets...) }

func (r *realServer) Args() Args                                { return r.args() }
func (r *realServer) Plan(a Args) dockerplan.Plan               { return r.plan(a) }
func (r *realServer) Up(p dockerplan.Plan) []dockerplan.Retired { return r.up(p) }
func (r *realServer) Exec(name string, cmd ...string) string    { return r.exec(name, cmd...) }
func (r *realServer) Engine() *dockerplan.Engine                { return r.engine }
func (r *realServer) Deployment() *dockerplan.Deployment        { return &r.d }
func (r *realServer) Prefix() string                            { return r.prefix }
