//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// detached runs cond with its own short deadline instead of the one framework.Consistently
// passes: near the end of that window client-go's rate limiter refuses to wait ("would
// exceed context deadline") before the context is done, which Consistently would report
// as the condition failing.
func detached(cond framework.Condition) framework.Condition {
	return func(context.Context) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cond(ctx)
	}
}
