package dataplane

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread of its own that has entered the network namespace at path,
// so the sockets fn opens belong to that namespace (they stay there after). The thread
// never runs anything else: if it cannot go back, it ends with its goroutine.
func inNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- fmt.Errorf("this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("leave network namespace %s: %w (after: %v)", path, err, fnErr)
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}
