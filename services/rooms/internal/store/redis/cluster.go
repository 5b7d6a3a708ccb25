package redis

import (
	"context"
	"errors"
	"net"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// answers keeps a Cluster client from sending a command again once an
// answer to it was lost, as MaxRetries does for one server: a Cluster client
// tries a command again after a broken connection whatever its MaxRetries,
// and a script whose answer was lost may have run. It also has the client
// learn the Cluster's slots again after a node could not be reached, so that
// a failover is followed as soon as a replica has taken over, not at the
// next periodic reload.
type answers struct {
	c    *goredis.ClusterClient
	lost sync.Map // Cmder → the error that lost its answer, while the Cluster client runs it
}

// guard installs the hooks on c and on each of its nodes.
func guard(c *goredis.ClusterClient) {
	a := &answers{c: c}
	c.OnNewNode(func(n *goredis.Client) { n.AddHook(nodeHook{a}) })
	c.AddHook(clusterHook{a})
}

// lostAnswer says whether err leaves it unknown whether Redis ran the
// command: it is no reply of Redis's, and not a failure to connect.
func lostAnswer(err error) bool {
	var reply goredis.Error
	var op *net.OpError
	return err != nil && !errors.As(err, &reply) && !(errors.As(err, &op) && op.Op == "dial")
}

// clusterHook wraps a command's whole run, redirections and attempts
// included.
type clusterHook struct{ a *answers }

func (clusterHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h clusterHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.a.lost.Delete(cmd)
		if unavailable(err) != err {
			h.a.c.ReloadState(ctx)
		}
		return err
	}
}

func (h clusterHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if unavailable(err) != err {
			h.a.c.ReloadState(ctx)
		}
		return err
	}
}

// nodeHook wraps each attempt of a command on one node.
type nodeHook struct{ a *answers }

func (nodeHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h nodeHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if err, ok := h.a.lost.Load(cmd); ok {
			cmd.SetErr(err.(error))
			return err.(error)
		}
		err := next(ctx, cmd)
		if lostAnswer(err) {
			h.a.lost.Store(cmd, err)
		}
		return err
	}
}

func (nodeHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
