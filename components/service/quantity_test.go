package service

import "testing"

func TestParseCPU(t *testing.T) {
	for in, want := range map[string]int64{"500m": 500, "0.5": 500, "2": 2000, "1.25": 1250, "100m": 100} {
		q, err := ParseCPU(in)
		if err != nil || q.Value != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, q.Value, err, want)
		}
	}
	for _, in := range []string{"", "half", "-1", "0.5m", "1.2345", "5 cores", "1e3"} {
		if _, err := ParseCPU(in); err == nil {
			t.Errorf("ParseCPU(%q) accepted a malformed quantity", in)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"512Mi": 512 << 20, "1Gi": 1 << 30, "512M": 512e6, "1024": 1024, "64Ki": 64 << 10} {
		q, err := ParseMemory(in)
		if err != nil || q.Value != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, q.Value, err, want)
		}
	}
	for _, in := range []string{"", "512MB", "1.5Gi", "-1Gi", "lots", "99999999999999Ti"} {
		if _, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) accepted a malformed quantity", in)
		}
	}
	if got := (Quantity{Value: 512 << 20}).Megabytes(); got != 512 {
		t.Errorf("Megabytes of 512Mi = %d", got)
	}
	if got := (Quantity{Value: 512e6}).Megabytes(); got != 489 {
		t.Errorf("Megabytes of 512M = %d, want 489 (rounded up)", got)
	}
}
