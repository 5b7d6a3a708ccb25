package edge

import (
	"context"
	"log/slog"

	"github.com/zishang520/socket.io/servers/socket/v3"
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

// unknown answers an event no handler is registered for.
func unknown(name string) handler {
	return func(c *client, _ context.Context, _ []any) (any, error) {
		c.g.cfg.Log.Debug("unknown event", "namespace", c.ns.Name, "socket", c.id, "event", name)
		return nil, errorf(CodeUnimplemented, "unknown event %q", name)
	}
}

// handle runs one event, in the socket's own goroutine (events of a socket are
// handled in order), and answers it.
func (c *client) handle(name string, h handler, raw []any) {
	args, ack := splitAck(raw)
	var (
		result any
		err    error
	)
	if err = c.awaitReady(); err == nil {
		if !c.limiter.Allow() {
			err = errorf(CodeResourceExhausted, "too many events: the limit is %g per second", c.g.cfg.Limits.EventRate)
		} else {
			ctx, cancel := c.callContext()
			result, err = h(c, ctx, args)
			cancel()
		}
	}
	c.reply(name, ack, result, err)
}

// reply sends the ack, if the client asked for one, and records the outcome.
func (c *client) reply(event string, ack socket.Ack, result any, err error) {
	a := Ack{Result: result}
	outcome := "ok"
	if err != nil {
		a = Ack{Err: toError(err)}
		outcome = string(a.Err.Code)
		level := slog.LevelInfo
		if a.Err.Code == CodeInternal || a.Err.Code == CodeUnavailable {
			level = slog.LevelError
		}
		c.g.cfg.Log.Log(context.Background(), level, "event refused", "namespace", c.ns.Name, "socket", c.id,
			"user", c.user, "event", event, "code", a.Err.Code, "err", err)
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
