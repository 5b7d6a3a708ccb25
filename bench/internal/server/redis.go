package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// redisArgs are the arguments of a redis-server on port with its data in
// dir that appends every write to its log before answering and syncs it
// every second.
func redisArgs(port int, dir string) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"}
}

// startRedis starts redis-server with its data in dir, adds it to s's
// processes and returns its URL once it answers.
func (s *Server) startRedis(ctx context.Context, o Options, tag, dir string) (string, error) {
	addr, err := s.startRedisNode(ctx, o, tag+"-redis", dir)
	return "redis://" + addr, err
}

// startRedisCluster starts a Redis Cluster of three primaries, each as
// startRedis's server, in dir, adds them to s's processes and returns the
// URL the rooms service reaches it by once every node serves every slot.
func (s *Server) startRedisCluster(ctx context.Context, o Options, tag, dir string) (string, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return "", fmt.Errorf("Parley on a Redis Cluster needs redis-cli (apt-get install redis-server): %w", err)
	}
	var addrs []string
	for i := range 3 {
		addr, err := s.startRedisNode(ctx, o, fmt.Sprintf("%s-redis%d", tag, i+1), filepath.Join(dir, strconv.Itoa(i+1)),
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		if err != nil {
			return "", err
		}
		addrs = append(addrs, addr)
	}
	cctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, cli, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	for _, addr := range addrs {
		err := s.wait(ctx, func() bool {
			info, err := redisCommand(addr, "CLUSTER INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_assigned:16384")
		})
		if err != nil {
			return "", fmt.Errorf("the cluster is not ok at %s: %w", addr, err)
		}
	}
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr="), nil
}

// startRedisNode starts one redis-server with extra arguments, adds it to
// s's processes under the name "redis" and returns its address once it
// answers.
func (s *Server) startRedisNode(ctx context.Context, o Options, tag, dir string, extra ...string) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("Parley on Redis needs redis-server (apt-get install redis-server): %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc(o.LogDir, tag, "redis", nil, nil, bin, append(redisArgs(port, dir), extra...)...)
	if err != nil {
		return "", err
	}
	s.procs = append(s.procs, p)
	err = s.wait(ctx, func() bool {
		reply, err := redisCommand(addr, "PING")
		return err == nil && reply == "PONG"
	})
	return addr, err
}

// redisCommand sends one inline command and returns its reply: a status
// line or a bulk string.
func redisCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("%s: reply %q", command, line)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err
	default:
		return "", fmt.Errorf("%s: reply %q", command, line)
	}
}
