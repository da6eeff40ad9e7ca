package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func get(url string) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", url, nil)
	}
}

func TestSteadyRateAndFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			http.Error(w, "no available server", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	run := Start(srv.Client(), get(srv.URL), Options{Rate: 100, Max: time.Minute})
	time.Sleep(time.Second)
	res := run.Stop()
	// 100/s for a second, give or take the scheduler.
	if res.Sent < 80 || res.Sent > 110 {
		t.Errorf("sent %d in 1 s at 100/s", res.Sent)
	}
	if want := res.Sent / 5; res.Failed < want-1 || res.Failed > want+1 {
		t.Errorf("failed %d of %d, want every fifth", res.Failed, res.Sent)
	}
	// The body's start names who answered the 503.
	if res.Errors["503 Service Unavailable: no available server"] != res.Failed {
		t.Errorf("errors by message: %v", res.Errors)
	}
	if res.P99 <= 0 || res.Max < res.P99 || res.P99 < res.P50 {
		t.Errorf("latencies p50 %s p99 %s max %s", res.P50, res.P99, res.Max)
	}
}

func TestStalledTargetShowsAsOverload(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	run := Start(srv.Client(), get(srv.URL), Options{Rate: 200, Max: time.Minute, MaxInFlight: 10})
	time.Sleep(300 * time.Millisecond)
	close(release)
	res := run.Stop()
	if res.Errors["overload: too many requests in flight"] == 0 {
		t.Errorf("a stalled target did not show as overload: %v", res)
	}
	// The ten requests in flight finished with their real outcome (and a
	// tick between the release and the stop may have sent one more).
	if ok := res.Sent - res.Failed; ok < 10 || ok > 12 {
		t.Errorf("%d requests succeeded, want the 10 that were in flight", ok)
	}
	if res.Errors["overload: too many requests in flight"] != res.Failed {
		t.Errorf("failures other than overload: %v", res.Errors)
	}
}

func TestMaxBoundsTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	start := time.Now()
	run := Start(srv.Client(), get(srv.URL), Options{Rate: 50, Max: 200 * time.Millisecond})
	time.Sleep(500 * time.Millisecond)
	res := run.Stop()
	if res.Sent > 15 || time.Since(start) > 2*time.Second {
		t.Errorf("a 200 ms run sent %d requests", res.Sent)
	}
}

func TestSaturateCountsAnsweredRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(10 * time.Millisecond) }))
	defer srv.Close()
	rps, failed := Saturate(srv.Client(), get(srv.URL), 4, 500*time.Millisecond)
	// 4 workers at ~10 ms each: about 400 a second.
	if failed != 0 || rps < 200 || rps > 420 {
		t.Errorf("%.0f requests a second, %d failed; want about 400", rps, failed)
	}
}

func TestFailureTimeline(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	res := Result{Outcomes: []Outcome{
		{Start: at.Add(500 * time.Millisecond)}, {Start: at.Add(12300 * time.Millisecond), Err: "504"},
		{Start: at.Add(12900 * time.Millisecond), Err: "502"}, {Start: at.Add(14 * time.Second), Err: "504"},
	}}
	if got := res.FailureTimeline(at); got != "+12s 2, +14s 1" {
		t.Errorf("FailureTimeline: %q", got)
	}
}
