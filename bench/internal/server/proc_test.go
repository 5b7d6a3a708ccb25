package server

import (
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", in: "1234 (node) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 5 0 0",
			want: 3 * time.Second},
		{name: "name with spaces and parentheses", in: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			want: 100 * time.Millisecond},
		{name: "short", in: "77 (x) R 1 2", wantErr: true},
		{name: "no name", in: "77 x R", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "present", in: "Name:\tnode\nVmPeak:\t 999 kB\nVmRSS:\t   51200 kB\nThreads:\t11\n", want: 51200 * 1024},
		{name: "absent (a zombie)", in: "Name:\tnode\nState:\tZ (zombie)\n", wantErr: true},
		{name: "odd unit", in: "VmRSS:\t 5 MB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatusRSS = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSystemBusy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "idle and iowait left out", in: "cpu  100 10 50 9000 40 0 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", want: 1650 * time.Millisecond},
		{name: "not the total line", in: "cpu0 1 2 3 4 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSystemBusy([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSystemBusy = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
