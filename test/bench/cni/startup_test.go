package cnibench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// execs is how many times each plugin is started per run.
const execs = 300

// BenchmarkPluginStartup measures what every pod ADD and DEL pays before the plugin
// does any work: exec of the binary up to its answer to CNI_COMMAND=VERSION, for
// stratus-bridge and for Debian's bridge plugin in the same run, alternating so
// background load hits both alike. It needs no root.
//
//	go test -run '^$' -bench BenchmarkPluginStartup -benchtime 1x ./test/bench/cni/
func BenchmarkPluginStartup(b *testing.B) {
	ref := filepath.Join(refBinDir, "bridge")
	if _, err := os.Stat(ref); err != nil {
		testcap.Missing(b, "CNI startup benchmark: reference plugin %s is absent (apt-get install -y containernetworking-plugins): %v", ref, err)
	}
	ours, err := nstest.BuildPlugin(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bins := []struct{ name, path string }{{"stratus-bridge", ours}, {"bridge", ref}}
	times := map[string][]time.Duration{}
	for n := 0; n < b.N; n++ {
		for i := 0; i < execs; i++ {
			for j := range bins {
				bin := bins[(i+j)%len(bins)]
				d, err := startOnce(bin.path)
				if err != nil {
					b.Fatalf("%s: %v", bin.name, err)
				}
				times[bin.name] = append(times[bin.name], d)
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nCNI plugin start-up (exec to VERSION answer), %d runs each, interleaved\n", len(times[bins[0].name]))
	fmt.Fprintf(&sb, "%-16s %10s %10s %10s\n", "plugin", "size", "p50", "p99")
	for _, bin := range bins {
		st, err := os.Stat(bin.path)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sb, "%-16s %8.1f MB %10s %10s\n", bin.name, float64(st.Size())/1e6, ms(pct(times[bin.name], 0.5)), ms(pct(times[bin.name], 0.99)))
	}
	o, r := pct(times[bins[0].name], 0.5), pct(times[bins[1].name], 0.5)
	fmt.Fprintf(&sb, "p50 stratus-bridge/bridge %.2f\n", float64(o)/float64(r))
	b.ReportMetric(float64(o.Microseconds())/1000, "stratus-startup-p50-ms")
	b.ReportMetric(float64(r.Microseconds())/1000, "ref-startup-p50-ms")
	fmt.Print(sb.String())
}

func startOnce(path string) (time.Duration, error) {
	cmd := exec.Command(path)
	cmd.Env = []string{"CNI_COMMAND=VERSION", "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("CNI_COMMAND=VERSION: %w", err)
	}
	d := time.Since(start)
	if !bytes.Contains(out.Bytes(), []byte("supportedVersions")) {
		return 0, fmt.Errorf("VERSION answered %q", out.String())
	}
	return d, nil
}
