package logstore

import (
	"strings"
	"testing"
	"time"
)

func TestQuerySelectsTheStacksContainersOnly(t *testing.T) {
	since := time.Date(2026, 12, 7, 10, 15, 0, 0, time.UTC)
	q := Query("fastapi", since, 500)
	for _, want := range []string{`_time:>=2026-12-07T10:15:00Z`, `app_name:~"^fastapi-"`, `sort by (_time desc)`, `limit 500`, `fields _time, app_name, _msg`} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %s", q, want)
		}
	}
	if strings.Contains(Query("fastapi", time.Time{}, 1), "_time:") {
		t.Errorf("no since: no time filter")
	}
}

func TestParseReadsTheStoresAnswer(t *testing.T) {
	answer := `{"_time":"2026-12-07T10:15:00.123456789Z","app_name":"fastapi-app-1-3f2a9c0d1e","_msg":"{\"level\": \"INFO\"}"}
{"_time":"2026-12-07T10:15:01Z","app_name":"fastapi-proxy","_msg":"GET / 200"}

`
	lines, err := Parse([]byte(answer))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Container != "fastapi-app-1-3f2a9c0d1e" || lines[0].Text != `{"level": "INFO"}` ||
		lines[0].Time.Nanosecond() != 123456789 || lines[1].Container != "fastapi-proxy" {
		t.Errorf("parsed %+v", lines)
	}
	if _, err := Parse([]byte("not json\n")); err == nil {
		t.Error("an answer that is not JSON lines: no error")
	}
}
