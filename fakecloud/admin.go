package fakecloud

import (
	"encoding/json"
	"net/http"
)

// adminPrefix is never reachable through the signed API, which only serves POST /.
const adminPrefix = "/_fakecloud/"

type admin struct {
	c   *Cloud
	mux *http.ServeMux
}

func newAdmin(c *Cloud) *admin {
	a := &admin{c: c, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /_fakecloud/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /_fakecloud/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.world.Store.Dump())
	})
	a.mux.HandleFunc("POST /_fakecloud/reset", func(w http.ResponseWriter, _ *http.Request) {
		if err := c.Reset(); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
	a.mux.HandleFunc("GET /_fakecloud/calls", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.calls.snapshot())
	})
	a.mux.HandleFunc("DELETE /_fakecloud/calls", func(w http.ResponseWriter, _ *http.Request) {
		c.calls.reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
	a.mux.HandleFunc("GET /_fakecloud/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.faults.list())
	})
	a.mux.HandleFunc("POST /_fakecloud/faults", func(w http.ResponseWriter, r *http.Request) {
		var rule FaultRule
		if err := decodeStrict(r, &rule); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if rule.ErrorRate < 0 || rule.ErrorRate > 1 || rule.FailNext < 0 || rule.LatencyMs < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "errorRate must be in [0,1]; failNext and latencyMs must not be negative"})
			return
		}
		c.faults.add(rule)
		writeJSON(w, http.StatusOK, c.faults.list())
	})
	a.mux.HandleFunc("DELETE /_fakecloud/faults", func(w http.ResponseWriter, _ *http.Request) {
		c.faults.clear()
		writeJSON(w, http.StatusOK, []FaultRule{})
	})
	a.mux.HandleFunc("POST /_fakecloud/ratelimit", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Action    string  `json:"action"`
			PerSecond float64 `json:"perSecond"`
		}
		if err := decodeStrict(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		c.limits.set(req.Action, req.PerSecond)
		writeJSON(w, http.StatusOK, req)
	})
	return a
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mux.ServeHTTP(w, r)
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
