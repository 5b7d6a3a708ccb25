package e2e

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/services/kit/proctest"
	"github.com/parleyhq/parley/services/kit/redistest"
)

// TestFaultsOnRedis runs stock socket.io clients publishing with acks
// through two gateways in front of two rooms replicas on one Redis that
// syncs every write, and in turn SIGKILLs each replica, a gateway and Redis,
// restarting each. Afterwards every message stored reached every client but
// its sender exactly once, every acknowledged message is stored, only the
// clients of the killed gateway lost their connection and each recovered,
// and once the clients leave their sessions and memberships are gone.
func TestFaultsOnRedis(t *testing.T) {
	rd := redistest.StartDurable(t)
	faultsOnRedis(t, "redis://"+rd.Addr, "SIGKILL Redis", func() { rd.Kill(); rd.Restart() })
}

// TestFaultsOnRedisCluster runs the faults of TestFaultsOnRedis on a Redis
// Cluster of three primaries that sync every write, the Redis killed and
// restarted on its data being the primary that holds the room.
func TestFaultsOnRedisCluster(t *testing.T) {
	cl := redistest.StartDurableCluster(t)
	holder := cl.NodeFor(t, "parley:room{"+faultsNamespace+"\x00"+faultsRoom+"}")
	faultsOnRedis(t, cl.URL(), "SIGKILL the room's Redis primary", func() { holder.Kill(); holder.Restart() })
}

const faultsNamespace, faultsRoom = "/faults", "faults"

func faultsOnRedis(t *testing.T, redisURL, redisFault string, killRedis func()) {
	dir, node := nodeDir(t)
	scale := chosenScale(t)
	const namespace, room = faultsNamespace, faultsRoom
	// Both replicas come back on their addresses, which the gateways know.
	replicas := []string{freeAddr(t), freeAddr(t)}
	s := startStack(t, "--listen", replicas[0], "--redis-url", redisURL, "--log-level", "info",
		"--lease-check-interval", "200ms", "--lease-grace", "5s")
	second := s.startReplica(replicas[1])

	addrs := []string{freeAddr(t), freeAddr(t)}
	gws := make([]*proctest.Process, len(addrs))
	urls := make([]string, len(addrs))
	startGateway := func(i int) {
		gws[i], urls[i] = s.gateway(addrs[i], "--rooms-addr", strings.Join(replicas, ","),
			"--log-level", "info", "--lease-ttl", "10s")
	}
	for i := range gws {
		startGateway(i)
	}

	sc := startFaultClients(t, dir, node, urls, namespace, room, scale)

	runFaults(t, sc, scale.phase, []fault{
		{"SIGKILL rooms replica 1", func() { s.restartRooms(func(p *proctest.Process) { p.Kill() }) }, nil},
		{"SIGKILL rooms replica 2", func() { second.Kill(); second = s.startReplica(replicas[1]) }, nil},
		{"SIGKILL gateway", func() { gws[0].Kill(); startGateway(0) }, clientsOf(0, len(gws), scale.clients)},
		{redisFault, killRedis, nil},
	})
	pause(t, scale.phase) // traffic after the last fault too

	s.finishFaults(t, sc, namespace, room, scale.clients)
}
