package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/parleyhq/parley/services/kit/requestid"
)

// handler runs one event's arguments (without the ack) and returns the ack's
// result.
type handler func(c *client, ctx context.Context, args []any) (any, error)

// events is the one list of the events a client may send: it registers their
// handlers, and the catch-all answers every other name.
var events = map[string]handler{
	"join":         typed((*client).decodeRoom, (*client).join),
	"leave":        typed((*client).decodeRoom, (*client).leaveRoom),
	"switch room":  typed((*client).decodeRoom, (*client).switchRoom),
	"send message": typed((*client).decodeSend, (*client).send),
	"history":      typed((*client).decodeHistory, (*client).history),
	"members":      typed((*client).decodeRoom, (*client).members),
	"rooms":        typed((*client).decodeNothing, (*client).listRooms),
}

// typed joins an event's decoder, which turns its arguments into a checked
// request, to the handler that runs the request.
func typed[Req, Res any](decode func(*client, []any) (Req, error), run func(*client, context.Context, Req) (Res, error)) handler {
	return func(c *client, ctx context.Context, args []any) (any, error) {
		req, err := decode(c, args)
		if err != nil {
			return nil, err
		}
		return run(c, ctx, req)
	}
}

// unknown answers an event no handler is registered for. Its name is the
// client's to choose, so only its start is logged and echoed.
func unknown(name string) handler {
	name = truncate(name, maxEchoedName)
	return func(c *client, _ context.Context, _ []any) (any, error) {
		c.g.cfg.Log.Debug("unknown event", "namespace", c.ns.Name, "socket", c.id, "event", name)
		return nil, errorf(CodeUnimplemented, "unknown event %q", name)
	}
}

// maxEchoedName is how much of an unknown event's name is logged and echoed.
const maxEchoedName = 64

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// onEvent handles the event name with its raw arguments (the ack last, if
// the client asked for one).
func (c *client) onEvent(name string, raw []any) {
	args, ack := splitAck(raw)
	c.g.cfg.Observer.EventReceived(c.ns.Name, c.id, name, args)
	if h, known := events[name]; known {
		c.handle(name, h, args, ack)
		return
	}
	c.handle("unknown", unknown(name), args, ack)
}

// handle runs one event, in the socket's own goroutine (events of a socket are
// handled in order), and answers it. The event's request id, the socket id
// and the event's number, goes with the rooms-service calls it makes, whose
// log lines carry it too.
func (c *client) handle(name string, h handler, args []any, ack socket.Ack) {
	id := c.id + ":" + strconv.FormatUint(c.events.Add(1), 10)
	start := time.Now()
	result, err := c.run(h, args, id)
	c.reply(name, ack, result, err, id, start)
}

// run runs h once the socket is set up, within its event allowance. A panic
// becomes an internal error that carries the stack into the log: socket.io
// would recover it out of sight, leaving the client without an ack, or, for
// an event of no registered name, not recover it and crash the gateway.
func (c *client) run(h handler, args []any, id string) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	if err := c.awaitReady(); err != nil {
		return nil, err
	}
	if !c.limiter.Allow() {
		return nil, errorf(CodeResourceExhausted, "too many events: the limit is %g per second", c.g.cfg.Limits.EventRate)
	}
	ctx, cancel := c.callContext()
	defer cancel()
	return h(c, requestid.With(ctx, id), args)
}

// reply sends the ack, if the client asked for one, and records the outcome:
// every event in the debug log, a refused one in the log.
func (c *client) reply(event string, ack socket.Ack, result any, err error, id string, start time.Time) {
	a := Ack{Result: result}
	outcome := "ok"
	if err != nil {
		a = Ack{Err: toError(err)}
		outcome = string(a.Err.Code)
		c.logRefusal(event, a.Err.Code, err, id)
	}
	if log := c.g.cfg.Log; log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("event handled", "namespace", c.ns.Name, "socket", c.id, "user", c.user, "event", event,
			"request_id", id, "outcome", outcome, "ms", float64(time.Since(start).Microseconds())/1000)
	}
	c.g.cfg.Metrics.Event(event, outcome)
	if ack != nil {
		ack([]any{a}, nil)
	}
}

func splitAck(raw []any) ([]any, socket.Ack) {
	if n := len(raw); n > 0 {
		if ack, ok := raw[n-1].(socket.Ack); ok {
			return raw[:n-1], ack
		}
	}
	return raw, nil
}

// logRefusal logs a refused event, at most refusalLogBurst at once and
// refusalLogRate a second per socket, the next line logged saying how many
// were left out: a hostile client cannot flood the log, and neither can an
// outage of the rooms service, which refuses every socket's every event.
// Refusals the client causes (bad input, limits, unknown events, an event cut
// short by its own disconnect) are logged at info; the rooms service being
// unavailable at warn; anything else that failed is an error.
func (c *client) logRefusal(event string, code Code, err error, id string) {
	if !c.logLimit.Allow() {
		c.unlogged.Add(1)
		return
	}
	level := slog.LevelInfo
	switch {
	case errors.Is(err, errDisconnected):
	case code == CodeUnavailable:
		level = slog.LevelWarn
	case code == CodeInternal:
		level = slog.LevelError
	}
	dropped := c.unlogged.Swap(0)
	c.g.cfg.Log.Log(context.Background(), level, "event refused", "namespace", c.ns.Name, "socket", c.id,
		"user", c.user, "event", event, "request_id", id, "code", code, "err", err, "unlogged_refusals", dropped)
}
