package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/bench/internal/suite"
)

// LayoutRow is one workload on one of Parley's stores: medians over its
// runs, CPU in µs.
type LayoutRow struct {
	Workload, Store                       string
	DeliveriesPerSec, P99, CPUPerDelivery Cell
	// CPU per delivery of each process, and Redis's per publish.
	Gateway, Rooms, Redis, RedisPerPublish Cell
}

// layouts are the servers whose stores the comparison shows, by name.
var layouts = []struct{ server, store string }{{"parley", "SQLite"}, {"parley-redis", "Redis"}, {"parley-cluster", "Redis Cluster"}}

// Layouts compares Parley on SQLite with Parley on Redis, for each workload
// both ran; none when Parley did not run on Redis.
func Layouts(runs []suite.Run) []LayoutRow {
	var workloads []string
	ran := map[string]bool{}
	for _, r := range runs {
		ran[r.Server] = true
		if (r.Server == "parley-redis" || r.Server == "parley-cluster") && !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
	}
	perDelivery := func(proc string) func(suite.Run) float64 {
		return func(r suite.Run) float64 { return us(r.CPUByProc[proc]) / float64(r.Phase.WindowDeliveries) }
	}
	var rows []LayoutRow
	for _, w := range workloads {
		for _, l := range layouts {
			if !ran[l.server] {
				continue
			}
			f := func(value func(suite.Run) float64) Cell {
				return cell(runs, l.server, figure{workload: w, value: func(r suite.Run) float64 {
					if r.Phase == nil || r.Phase.WindowDeliveries == 0 {
						return 0
					}
					return value(r)
				}})
			}
			row := LayoutRow{
				Workload: w, Store: l.store,
				DeliveriesPerSec: f(func(r suite.Run) float64 { return r.Phase.DeliveriesPerSec }),
				P99:              f(p99),
				CPUPerDelivery:   f(cpuPerDelivery),
				Gateway:          f(perDelivery("gateway")),
				Rooms:            f(perDelivery("rooms service")),
			}
			if l.server != "parley" {
				row.Redis = f(perDelivery("redis"))
				row.RedisPerPublish = f(func(r suite.Run) float64 {
					return us(r.CPUByProc["redis"]) / (r.Rate * float64(r.Clients) * r.Phase.Window.Seconds())
				})
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// LayoutsFailed says whether a run of either store lost or misdelivered a
// message, or failed.
func LayoutsFailed(rows []LayoutRow) bool {
	for _, r := range rows {
		if r.DeliveriesPerSec.Failure != "" {
			return true
		}
	}
	return false
}

func writeLayouts(b *strings.Builder, rows []LayoutRow) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Parley on Redis\n\n" +
		"The same workloads with the rooms service on a redis-server (`--redis-url`; append-only file, synced every second, " +
		"so that an acknowledged message survives a crash of Redis as it survives one of the rooms service on SQLite) " +
		"next to Parley on SQLite, and, when it ran (`--servers ...,parley-cluster`), on a Redis Cluster of three primaries " +
		"on the same machine. One rooms service in each, so the figures compare; docs/scaling.md says what more replicas add. " +
		"CPU per delivery in µs, of every process, Redis's included.\n\n")
	b.WriteString("| workload | store | deliveries/s | p99 (ms) | CPU per delivery | gateway | rooms service | Redis | Redis CPU per publish (µs) |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if f := r.DeliveriesPerSec.Failure; f != "" {
			fmt.Fprintf(b, "| %s | %s | FAIL: %s | | | | | | |\n", r.Workload, r.Store, f)
			continue
		}
		redis, perPublish := "", ""
		if r.Store != "SQLite" {
			redis, perPublish = r.Redis.format(1), r.RedisPerPublish.format(1)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Store,
			r.DeliveriesPerSec.format(0), r.P99.format(2), r.CPUPerDelivery.format(1),
			r.Gateway.format(1), r.Rooms.format(1), redis, perPublish)
	}
}
