package loadgen

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// PhaseSpec is a period of sending: a warm-up, then the measured window.
type PhaseSpec struct {
	Rate     float64 // messages per second, all clients together, spread evenly over them and in time
	Warmup   time.Duration
	Duration time.Duration // the measured window
	// After sending stops, the phase waits for every expected delivery, until
	// none arrived for DrainQuiet, at most DrainMax.
	DrainQuiet, DrainMax time.Duration
	// Begin and End, when set, are called as the measured window opens and
	// closes, for the caller's own measurements (server CPU, memory).
	Begin, End func()
}

// PhaseResult is what a phase delivered. Deliveries are counted per
// receiving client: a message to a room of 10 is 9 deliveries.
type PhaseResult struct {
	Sent       int64 // messages written to the server
	SendErrors int64 // messages whose write failed (not expected anywhere)
	Expected   int64 // deliveries the sent messages owe: sent × (room members − 1)
	Delivered  int64 // distinct deliveries received, by the end of the drain
	Lost       int64 // expected deliveries that never arrived
	Duplicated int64 // deliveries received more than once
	// Misdelivered are messages received by a client outside the sender's
	// room, or by the sender itself.
	Misdelivered  int64
	AfterRecovery int64 // deliveries to clients that had recovered their connection

	Window           time.Duration // the measured window, as it was
	WindowDeliveries int64         // deliveries received within it
	DeliveriesPerSec float64
	// Latency from send to receipt, at every receiving member, of the
	// messages sent within the measured window.
	LatencySamples uint64
	P50, P99, Max  time.Duration
	Drain          time.Duration // how long the drain took
}

// phase tracks the messages of one PhaseSpec: for message id base+i, which
// members of the sender's room got it, one bit each.
type phase struct {
	s        *Session
	base     int64
	capacity int64
	words    int // bitmap words per message
	got      []atomic.Uint64
	sentBits []atomic.Uint64 // which ids were written successfully

	// Latency is recorded for messages sent within [from, to), in ns since
	// the session started.
	from, to atomic.Int64

	sent, sendErrors, overflow                  atomic.Int64
	delivered, dup, misdelivered, afterRecovery atomic.Int64
	hist                                        Histogram
}

func (p *phase) deliver(c *client, m message, now time.Duration) {
	slot := m.id - p.base
	if slot < 0 || slot >= p.capacity {
		p.s.stale.Add(1)
		return
	}
	if m.sender < 0 || m.sender >= int64(len(p.s.clients)) {
		p.misdelivered.Add(1)
		return
	}
	if sender := p.s.clients[m.sender]; sender.room != c.room || sender == c {
		p.misdelivered.Add(1)
		return
	}
	bit := uint64(1) << (c.member % 64)
	if p.got[int(slot)*p.words+c.member/64].Or(bit)&bit != 0 {
		p.dup.Add(1)
		return
	}
	p.delivered.Add(1)
	if c.recovered {
		p.afterRecovery.Add(1)
	}
	if m.sent >= p.from.Load() && m.sent < p.to.Load() {
		p.hist.Record(now - time.Duration(m.sent))
	}
}

// Run sends spec.Rate messages per second for spec.Warmup + spec.Duration,
// each from one client to its room, then drains and counts what arrived.
func (s *Session) Run(ctx context.Context, spec PhaseSpec) (PhaseResult, error) {
	if spec.Rate <= 0 {
		return PhaseResult{}, fmt.Errorf("rate %v: want > 0", spec.Rate)
	}
	total := (spec.Warmup + spec.Duration).Seconds()
	// Room for the senders to catch up a little if they fall behind.
	capacity := int64(math.Ceil(spec.Rate*total*1.25)) + 1000
	words := (s.layout.RoomSize + 63) / 64
	p := &phase{
		s: s, base: s.nextID.Load(), capacity: capacity, words: words,
		got:      make([]atomic.Uint64, capacity*int64(words)),
		sentBits: make([]atomic.Uint64, (capacity+63)/64),
	}
	p.from.Store(math.MaxInt64)
	p.to.Store(math.MaxInt64)
	s.phase.Store(p)

	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var senders sync.WaitGroup
	s.startSenders(sendCtx, p, spec.Rate, &senders)

	if !sleep(ctx, spec.Warmup) {
		return PhaseResult{}, ctx.Err()
	}
	if spec.Begin != nil {
		spec.Begin()
	}
	begin := time.Since(s.start)
	p.from.Store(int64(begin))
	delivered0 := p.delivered.Load()
	if !sleep(ctx, spec.Duration) {
		return PhaseResult{}, ctx.Err()
	}
	end := time.Since(s.start)
	p.to.Store(int64(end))
	delivered1 := p.delivered.Load()
	if spec.End != nil {
		spec.End()
	}
	stopSending()
	senders.Wait()

	expected := p.sent.Load() * int64(s.layout.RoomSize-1)
	drainStart := time.Now()
	last, lastChange := p.delivered.Load(), time.Now()
	for p.delivered.Load() < expected && time.Since(drainStart) < spec.DrainMax && time.Since(lastChange) < spec.DrainQuiet {
		if !sleep(ctx, 20*time.Millisecond) {
			return PhaseResult{}, ctx.Err()
		}
		if d := p.delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		}
	}
	drain := time.Since(drainStart)
	if n := p.overflow.Load(); n > 0 {
		return PhaseResult{}, fmt.Errorf("%d messages not sent: the phase's table of %d messages is full (senders far behind)", n, capacity)
	}
	r := PhaseResult{
		Sent: p.sent.Load(), SendErrors: p.sendErrors.Load(), Expected: expected,
		Delivered: p.delivered.Load(), Duplicated: p.dup.Load(), Misdelivered: p.misdelivered.Load(),
		AfterRecovery: p.afterRecovery.Load(), Lost: p.lost(),
		Window: end - begin, WindowDeliveries: delivered1 - delivered0,
		LatencySamples: p.hist.Count(), P50: p.hist.Quantile(0.50), P99: p.hist.Quantile(0.99), Max: p.hist.Max(),
		Drain: drain,
	}
	r.DeliveriesPerSec = float64(r.WindowDeliveries) / r.Window.Seconds()
	return r, nil
}

// lost counts, over every message sent, the members of the sender's room
// (but the sender) whose bit is not set.
func (p *phase) lost() int64 {
	size := p.s.layout.RoomSize
	var lost int64
	n := min(p.s.nextID.Load()-p.base, p.capacity)
	for slot := range n {
		if p.sentBits[slot/64].Load()&(1<<(slot%64)) == 0 {
			continue
		}
		// deliver never sets the sender's own bit.
		got := 0
		for w := range p.words {
			got += bits.OnesCount64(p.got[int(slot)*p.words+w].Load())
		}
		lost += int64(size - 1 - got)
	}
	return lost
}

// startSenders sends from every client in turn: shards of clients, each
// with its own goroutine, so that one slow write does not stall them all,
// and each offset in time so that sends interleave evenly.
func (s *Session) startSenders(ctx context.Context, p *phase, rate float64, wg *sync.WaitGroup) {
	shards := min(4, len(s.clients))
	for j := range shards {
		var mine []*client
		for i := j; i < len(s.clients); i += shards {
			mine = append(mine, s.clients[i])
		}
		interval := time.Duration(float64(time.Second) * float64(shards) / rate)
		first := time.Now().Add(time.Duration(float64(time.Second) * float64(j) / rate))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sendLoop(ctx, p, mine, first, interval)
		}()
	}
}

func (s *Session) sendLoop(ctx context.Context, p *phase, clients []*client, next time.Time, interval time.Duration) {
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		s.send(p, clients[n%len(clients)])
		next = next.Add(interval)
		timer.Reset(time.Until(next))
	}
}

func (s *Session) send(p *phase, c *client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := s.nextID.Add(1) - 1
	slot := id - p.base
	if slot >= p.capacity {
		p.overflow.Add(1)
		return
	}
	m := message{sender: int64(c.id), id: id, sent: int64(time.Since(s.start))}
	c.sbuf = appendSend(c.sbuf[:0], c.roomName, m)
	if err := c.writeLocked(opText, c.sbuf); err != nil {
		p.sendErrors.Add(1)
		return
	}
	p.sentBits[slot/64].Or(1 << (slot % 64))
	p.sent.Add(1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
