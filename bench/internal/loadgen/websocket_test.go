package loadgen

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70000)
	tests := []struct {
		name    string
		in      []byte
		want    frame
		wantN   int
		wantOK  bool
		trailer int // bytes after the frame
	}{
		{name: "short text", in: []byte("\x81\x02hi"), want: frame{true, opText, []byte("hi")}, wantN: 4, wantOK: true},
		{name: "16-bit length", in: append([]byte{0x81, 126, 1, 44}, long...), want: frame{true, opText, []byte(long)}, wantN: 304, wantOK: true},
		{name: "64-bit length", in: append([]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}, huge...), want: frame{true, opText, []byte(huge)}, wantN: 70010, wantOK: true},
		{name: "not final", in: []byte("\x01\x01a"), want: frame{false, opText, []byte("a")}, wantN: 3, wantOK: true},
		{name: "ping", in: []byte("\x89\x00"), want: frame{true, opPing, []byte{}}, wantN: 2, wantOK: true},
		{name: "masked", in: []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}, want: frame{true, opText, []byte("hi")}, wantN: 8, wantOK: true},
		{name: "followed by the next frame", in: []byte("\x81\x01a\x81\x01b"), want: frame{true, opText, []byte("a")}, wantN: 3, wantOK: true},
		{name: "header cut", in: []byte("\x81")},
		{name: "16-bit length cut", in: []byte{0x81, 126, 1}},
		{name: "payload cut", in: []byte("\x81\x05hel")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, ok := parseFrame(tt.in)
			if ok != tt.wantOK || n != tt.wantN || got.fin != tt.want.fin || got.opcode != tt.want.opcode || !bytes.Equal(got.payload, tt.want.payload) {
				t.Errorf("parseFrame = {%v %v %.20q} %d %v; want {%v %v %.20q} %d %v",
					got.fin, got.opcode, got.payload, n, ok, tt.want.fin, tt.want.opcode, tt.want.payload, tt.wantN, tt.wantOK)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("z"), size)
		b := appendFrame(nil, opText, payload)
		if b[1]&0x80 == 0 {
			t.Errorf("size %d: client frames must be masked", size)
		}
		// The same bytes unmasked by a server: the key is zero.
		f, n, ok := parseFrame(b)
		if !ok || n != len(b) || !f.fin || f.opcode != opText || !bytes.Equal(f.payload, payload) {
			t.Errorf("size %d: parsed back {%v %v len %d} %d %v", size, f.fin, f.opcode, len(f.payload), n, ok)
		}
	}
}
