// Package cnibench compares stratus-bridge with Debian's reference bridge +
// host-local plugins: ADD and DEL latency over 110 pods, in the same run and the
// same namespace setup, both driven through libcni as a runtime would.
//
//	go test -run '^$' -bench BenchmarkPodLifecycle -benchtime 1x ./test/bench/cni/
//
// Plain `go test ./...` runs no benchmark, so it costs nothing there.
package cnibench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

const (
	pods      = 110
	refBinDir = "/usr/lib/cni"
)

type plugin struct {
	name     string
	conflist func(masq bool, dataDir string) string
	binDirs  []string
}

type sample struct{ add, del []time.Duration }

func BenchmarkPodLifecycle(b *testing.B) {
	if why := nstest.Usable(); why != "" {
		testcap.Missing(b, "CNI benchmark: %s", why)
	}
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(refBinDir, p)); err != nil {
			testcap.Missing(b, "CNI benchmark: reference plugin %s/%s is absent (apt-get install -y containernetworking-plugins): %v", refBinDir, p, err)
		}
	}
	rounds := 1
	if v, err := strconv.Atoi(os.Getenv("STRATUS_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	scenarios := []bool{false, true}
	switch os.Getenv("STRATUS_BENCH_MASQ") {
	case "off":
		scenarios = []bool{false}
	case "on":
		scenarios = []bool{true}
	}
	nstest.Sweep()
	binDir := b.TempDir()
	if _, err := nstest.BuildPlugin(binDir); err != nil {
		b.Fatal(err)
	}

	// Both plugins speak 1.0.0 here (the newest the Debian plugins support), get the
	// same MTU, a gateway on the bridge and a default route in the pod.
	plugins := []plugin{
		{
			name:    "stratus-bridge",
			binDirs: []string{binDir},
			conflist: func(masq bool, dataDir string) string {
				return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench-stratus","plugins":[{"type":"stratus-bridge",
					"bridge":"sbbench0","subnet":"10.251.0.0/24","mtu":1500,"ipMasq":%t,
					"nonMasqueradeCIDRs":["10.0.0.0/8"],"dataDir":%q}]}`, masq, dataDir)
			},
		},
		{
			name:    "bridge+host-local",
			binDirs: []string{refBinDir},
			conflist: func(masq bool, dataDir string) string {
				return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench-ref","plugins":[{"type":"bridge",
					"bridge":"sbbench1","isDefaultGateway":true,"mtu":1500,"ipMasq":%t,
					"ipam":{"type":"host-local","subnet":"10.252.0.0/24","dataDir":%q}}]}`, masq, dataDir)
			},
		},
	}

	node := nstest.New(b, "bnode")
	podNS := make([]*nstest.NS, pods)
	for i := range podNS {
		podNS[i] = nstest.New(b, "bpod")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	results := map[string]*sample{}
	for n := 0; n < b.N; n++ {
		for r := 0; r < rounds; r++ {
			for _, masq := range scenarios {
				// Alternate which plugin goes first, so background load drifts evenly.
				order := plugins
				if r%2 == 1 {
					order = []plugin{plugins[1], plugins[0]}
				}
				for _, p := range order {
					key := scenario(masq) + "\t" + p.name
					if results[key] == nil {
						results[key] = &sample{}
					}
					add, del := cycle(ctx, b, node, podNS, p, masq)
					results[key].add = append(results[key].add, add...)
					results[key].del = append(results[key].del, del...)
				}
			}
		}
	}
	report(b, results, plugins, scenarios)
}

func scenario(masq bool) string {
	if masq {
		return "ipMasq on"
	}
	return "ipMasq off"
}

// cycle adds every pod, then deletes every pod, timing each call.
func cycle(ctx context.Context, b *testing.B, node *nstest.NS, podNS []*nstest.NS, p plugin, masq bool) (add, del []time.Duration) {
	b.Helper()
	rt, err := nstest.NewRuntime(node, p.binDirs, b.TempDir(), []byte(p.conflist(masq, b.TempDir())))
	if err != nil {
		b.Fatal(err)
	}
	confs := make([]*libcni.RuntimeConf, len(podNS))
	for i, n := range podNS {
		confs[i] = nstest.Pod(fmt.Sprintf("bench-%d", i), n.Path(), "eth0")
	}
	for _, rc := range confs {
		start := time.Now()
		if _, err := rt.Add(ctx, rc); err != nil {
			b.Fatalf("%s ADD %s: %v", p.name, rc.ContainerID, err)
		}
		add = append(add, time.Since(start))
	}
	for _, rc := range confs {
		start := time.Now()
		if err := rt.Del(ctx, rc); err != nil {
			b.Fatalf("%s DEL %s: %v", p.name, rc.ContainerID, err)
		}
		del = append(del, time.Since(start))
	}
	return add, del
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(p*float64(len(s)-1) + 0.5)
	return s[idx]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func report(b *testing.B, results map[string]*sample, plugins []plugin, scenarios []bool) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nCNI pod lifecycle, %d pods per cycle, same node namespace, through libcni\n", pods)
	fmt.Fprintf(&sb, "%-11s %-18s %-4s %5s %10s %10s\n", "scenario", "plugin", "op", "n", "p50", "p99")
	for _, masq := range scenarios {
		for _, p := range plugins {
			s := results[scenario(masq)+"\t"+p.name]
			for _, op := range []struct {
				name string
				d    []time.Duration
			}{{"ADD", s.add}, {"DEL", s.del}} {
				fmt.Fprintf(&sb, "%-11s %-18s %-4s %5d %10s %10s\n", scenario(masq), p.name, op.name, len(op.d), ms(pct(op.d, 0.5)), ms(pct(op.d, 0.99)))
			}
		}
	}
	for _, masq := range scenarios {
		ours, ref := results[scenario(masq)+"\t"+plugins[0].name], results[scenario(masq)+"\t"+plugins[1].name]
		addRatio := float64(pct(ours.add, 0.5)) / float64(pct(ref.add, 0.5))
		delRatio := float64(pct(ours.del, 0.5)) / float64(pct(ref.del, 0.5))
		fmt.Fprintf(&sb, "%s: p50 stratus/reference ADD %.2f, DEL %.2f (target <= 1.00)\n", scenario(masq), addRatio, delRatio)
		tag := strings.ReplaceAll(scenario(masq), " ", "-")
		b.ReportMetric(float64(pct(ours.add, 0.5).Microseconds())/1000, "stratus-add-p50-ms-"+tag)
		b.ReportMetric(float64(pct(ref.add, 0.5).Microseconds())/1000, "ref-add-p50-ms-"+tag)
		b.ReportMetric(float64(pct(ours.del, 0.5).Microseconds())/1000, "stratus-del-p50-ms-"+tag)
		b.ReportMetric(float64(pct(ref.del, 0.5).Microseconds())/1000, "ref-del-p50-ms-"+tag)
	}
	fmt.Print(sb.String())
}
