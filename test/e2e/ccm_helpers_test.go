//go:build e2e

package e2e

import (
	"fmt"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
