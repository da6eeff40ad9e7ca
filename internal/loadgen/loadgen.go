// Package loadgen sends HTTP requests at a steady rate (open loop: a slow
// answer does not slow the sender, as with real users) and records every
// outcome, for the tests and benchmarks that measure what a rollout, a
// crash or a proxy costs. It is bounded in count and time, and only ever
// aimed by its callers at 127.0.0.1 or the project's own containers.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options bound a run.
type Options struct {
	// Rate is requests per second (required).
	Rate float64
	// Max is the longest the run may last (required): Stop ends it
	// earlier.
	Max time.Duration
	// MaxInFlight caps concurrent requests; a tick that finds the cap
	// reached counts as a failure ("overload"), so a stalled target shows
	// up in the result instead of piling up goroutines. Default 256.
	MaxInFlight int
	// OK says whether a response counts as a success; default: status 200.
	OK func(*http.Response) bool
}

// Run is a load in progress.
type Run struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	outcomes []Outcome
}

// Outcome is one request's fate.
type Outcome struct {
	Start   time.Time
	Latency time.Duration
	// Err is empty on success, else the error, or the unexpected status
	// and the start of its body: a proxy's own 503 ("no available
	// server") and the app's ({"status":"not ready",...}) tell apart.
	Err string
}

// Start sends newRequest() at opts.Rate with client until Stop or opts.Max.
func Start(client *http.Client, newRequest func(context.Context) (*http.Request, error), opts Options) *Run {
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = 256
	}
	if opts.OK == nil {
		opts.OK = func(r *http.Response) bool { return r.StatusCode == http.StatusOK }
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Max)
	r := &Run{cancel: cancel, done: make(chan struct{})}
	slots := make(chan struct{}, opts.MaxInFlight)
	go func() {
		defer close(r.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				r.record(Outcome{Start: time.Now(), Err: "overload: too many requests in flight"})
				continue
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				r.record(send(client, newRequest, opts.OK))
			}()
		}
	}()
	return r
}

// send runs one request; it is not cut short by Stop, so a request in
// flight when the run ends still counts with its real outcome.
func send(client *http.Client, newRequest func(context.Context) (*http.Request, error), ok func(*http.Response) bool) Outcome {
	start := time.Now()
	req, err := newRequest(context.Background())
	if err != nil {
		return Outcome{Start: start, Err: err.Error()}
	}
	resp, err := client.Do(req)
	o := Outcome{Start: start}
	switch {
	case err != nil:
		o.Err = err.Error()
	default:
		if !ok(resp) {
			o.Err = failedStatus(resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	o.Latency = time.Since(start)
	return o
}

// failedStatus is the status line and the body's first line, up to 40
// bytes.
func failedStatus(resp *http.Response) string {
	head := make([]byte, 40)
	n, _ := io.ReadFull(resp.Body, head)
	body, _, _ := strings.Cut(strings.TrimSpace(string(head[:n])), "\n")
	if body == "" {
		return resp.Status
	}
	return resp.Status + ": " + body
}

func (r *Run) record(o Outcome) {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, o)
	r.mu.Unlock()
}

// Stop ends the run, waits for the requests in flight and summarises.
func (r *Run) Stop() Result {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarise(r.outcomes)
}

// Result summarises a run.
type Result struct {
	Sent, Failed  int
	P50, P99, Max time.Duration
	// Errors counts failures by message (the first 80 characters).
	Errors   map[string]int
	Outcomes []Outcome
}

func summarise(outcomes []Outcome) Result {
	res := Result{Sent: len(outcomes), Errors: map[string]int{}, Outcomes: outcomes}
	var lat []time.Duration
	for _, o := range outcomes {
		if o.Err != "" {
			res.Failed++
			msg := o.Err
			if len(msg) > 80 {
				msg = msg[:80]
			}
			res.Errors[msg]++
		}
		if o.Latency > 0 {
			lat = append(lat, o.Latency)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if n := len(lat); n > 0 {
		res.P50 = lat[n*50/100]
		res.P99 = lat[min(n-1, n*99/100)]
		res.Max = lat[n-1]
	}
	return res
}

// String is one line for a test log or a benchmark table.
func (r Result) String() string {
	s := fmt.Sprintf("%d requests, %d failed, p50 %s, p99 %s, max %s", r.Sent, r.Failed,
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond))
	if len(r.Errors) > 0 {
		var errs []string
		for _, msg := range slices.Sorted(maps.Keys(r.Errors)) {
			errs = append(errs, fmt.Sprintf("%dx %s", r.Errors[msg], msg))
		}
		s += " (" + strings.Join(errs, "; ") + ")"
	}
	return s
}

// FailureTimeline is when the failures started, by second since since:
// "+12s 3, +13s 40" (the moment a release broke requests, beside its
// events).
func (r Result) FailureTimeline(since time.Time) string {
	counts := map[int]int{}
	for _, o := range r.Outcomes {
		if o.Err != "" {
			counts[int(o.Start.Sub(since).Seconds())]++
		}
	}
	var parts []string
	for _, sec := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("+%ds %d", sec, counts[sec]))
	}
	return strings.Join(parts, ", ")
}

// Saturate sends requests from conns workers back to back for d (closed
// loop: each waits for its answer) and returns the answered requests per
// second and the failures: a throughput figure, not a latency one.
func Saturate(client *http.Client, newRequest func(context.Context) (*http.Request, error), conns int, d time.Duration) (perSecond float64, failed int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := newRequest(ctx)
				if err != nil {
					return
				}
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if resp != nil {
						resp.Body.Close()
					}
					return
				}
				good := err == nil && resp.StatusCode == http.StatusOK
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if good {
					ok++
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(ok) / time.Since(start).Seconds(), failed
}
