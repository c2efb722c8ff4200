// Package metrics exports the cloud API calls the provider makes as Prometheus metrics in
// component-base's legacy registry, which the controller manager serves on /metrics:
// a counter and a latency histogram per service, action and result. It observes calls
// through a cloudapi.CallHook and never makes any.
package metrics

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/stratus-cloud/stratus/cloudapi"
)

const subsystem = "stratus_cloudapi"

// ResultSuccess is the result label of a call that got an answer without an error; a
// failed call is labelled with its error code (or "TransportError").
const ResultSuccess = "success"

var (
	// Requests counts every attempt, retries included.
	Requests = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "requests_total",
		Help:           "Cloud API attempts by service, action and result (success or the error code).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"service", "action", "result"})

	// Duration is the latency of every attempt, from send to decoded answer.
	Duration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      subsystem,
		Name:           "request_duration_seconds",
		Help:           "Cloud API attempt latency by service, action and result.",
		Buckets:        []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		StabilityLevel: metrics.ALPHA,
	}, []string{"service", "action", "result"})

	registerOnce sync.Once
)

// Register adds the metrics to the legacy registry; calling it again does nothing.
func Register() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(Requests, Duration)
	})
}

// Result is the result label of c.
func Result(c cloudapi.Call) string {
	if c.Err == nil {
		return ResultSuccess
	}
	if c.Code != "" {
		return c.Code
	}
	return "TransportError"
}

// Hook records c; pass it in cloudapi.Config.Hooks. It registers the metrics on first use.
func Hook(c cloudapi.Call) {
	Register()
	r := Result(c)
	Requests.WithLabelValues(c.Service, c.Action, r).Inc()
	Duration.WithLabelValues(c.Service, c.Action, r).Observe(c.Duration.Seconds())
}
