package dataplane

import (
	"os"
	"testing"
)

func newBenchPlane(b *testing.B) *Plane {
	b.Helper()
	if os.Geteuid() != 0 || Available() != nil {
		b.Skip("SKIPPING data-plane benchmark: needs root and /dev/loop-control")
	}
	dataDir := b.TempDir()
	b.Cleanup(func() { _ = DetachUnder(dataDir) })
	p, err := New(Options{DataDir: dataDir, DevRoot: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkAttachDetach measures one attach (loop device + by-id link) plus one detach.
func BenchmarkAttachDetach(b *testing.B) {
	p := newBenchPlane(b)
	if err := p.CreateDisk("disk-bench", 10<<30, ""); err != nil {
		b.Fatal(err)
	}
	want := []Attachment{{DiskID: "disk-bench", InstanceID: "ins-1"}}
	for b.Loop() {
		if err := p.Reconcile(want); err != nil {
			b.Fatal(err)
		}
		if err := p.Reconcile(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot measures a snapshot of a 10 GiB disk holding 64 MiB of data.
func BenchmarkSnapshot(b *testing.B) {
	p := newBenchPlane(b)
	if err := p.CreateDisk("disk-bench", 10<<30, ""); err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(p.ImagePath("disk-bench"), os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range 64 {
		chunk[0] = byte(i)
		if _, err := f.WriteAt(chunk, int64(i)*(128<<20)); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	for b.Loop() {
		if err := p.Snapshot("disk-bench", "snap-bench"); err != nil {
			b.Fatal(err)
		}
		if err := p.DeleteSnapshot("snap-bench"); err != nil {
			b.Fatal(err)
		}
	}
}
