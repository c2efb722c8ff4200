package clb

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
)

func i64(v int64) *int64   { return &v }
func str(v string) *string { return &v }

// maxContext is the documented length of a CUSTOM check's SendContext and RecvContext.
const maxContext = 500

// checkPing is the UDP listeners' default check: the target's host answers ICMP echo.
const checkPing = "PING"

// defaultHealthCheck is what a listener gets when CreateListener says nothing: checks on,
// timeout 2s, interval 5s, 3 passes up, 3 failures down, TCP connect (UDP: PING).
func defaultHealthCheck(protocol string) clb.HealthCheck {
	hc := clb.HealthCheck{
		HealthSwitch: i64(1), TimeOut: i64(2), IntervalTime: i64(5), HealthNum: i64(3), UnHealthNum: i64(3),
		HttpCode: i64(31), HttpCheckPath: str("/"), HttpCheckDomain: str(""), HttpCheckMethod: str("HEAD"),
		CheckPort: i64(0), ContextType: str(""), SendContext: str(""), RecvContext: str(""),
		CheckType: str(clb.CheckTCP), HttpVersion: str("HTTP/1.1"),
	}
	if protocol == clb.ProtocolUDP {
		hc.CheckType = str(checkPing)
	}
	return hc
}

// mergeHealthCheck lays the fields set in patch over base.
func mergeHealthCheck(base clb.HealthCheck, patch *clb.HealthCheck) clb.HealthCheck {
	if patch == nil {
		return base
	}
	set := func(dst **int64, src *int64) {
		if src != nil {
			*dst = i64(*src)
		}
	}
	sets := func(dst **string, src *string) {
		if src != nil {
			*dst = str(*src)
		}
	}
	set(&base.HealthSwitch, patch.HealthSwitch)
	set(&base.TimeOut, patch.TimeOut)
	set(&base.IntervalTime, patch.IntervalTime)
	set(&base.HealthNum, patch.HealthNum)
	set(&base.UnHealthNum, patch.UnHealthNum)
	set(&base.HttpCode, patch.HttpCode)
	sets(&base.HttpCheckPath, patch.HttpCheckPath)
	sets(&base.HttpCheckDomain, patch.HttpCheckDomain)
	sets(&base.HttpCheckMethod, patch.HttpCheckMethod)
	set(&base.CheckPort, patch.CheckPort)
	sets(&base.ContextType, patch.ContextType)
	sets(&base.SendContext, patch.SendContext)
	sets(&base.RecvContext, patch.RecvContext)
	sets(&base.CheckType, patch.CheckType)
	sets(&base.HttpVersion, patch.HttpVersion)
	return base
}

func inRange(field string, v *int64, lo, hi int64) error {
	if *v < lo || *v > hi {
		return api.InvalidValue("HealthCheck."+field, "must be between %d and %d, got %d", lo, hi, *v)
	}
	return nil
}

// checkHealthCheck validates a merged health check for a listener of protocol.
func checkHealthCheck(hc *clb.HealthCheck, protocol string) error {
	if *hc.HealthSwitch != 0 && *hc.HealthSwitch != 1 {
		return api.InvalidValue("HealthCheck.HealthSwitch", "must be 0 or 1, got %d", *hc.HealthSwitch)
	}
	for _, c := range []struct {
		f      string
		v      *int64
		lo, hi int64
	}{
		{"TimeOut", hc.TimeOut, 2, 60}, {"IntervalTime", hc.IntervalTime, 5, 300},
		{"HealthNum", hc.HealthNum, 2, 10}, {"UnHealthNum", hc.UnHealthNum, 2, 10},
		{"HttpCode", hc.HttpCode, 1, 31}, {"CheckPort", hc.CheckPort, 0, 65535},
	} {
		if err := inRange(c.f, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if *hc.TimeOut >= *hc.IntervalTime {
		return api.InvalidValue("HealthCheck.TimeOut", "must be less than IntervalTime (%d), got %d", *hc.IntervalTime, *hc.TimeOut)
	}
	ct := *hc.CheckType
	switch {
	case protocol == clb.ProtocolTCP && ct != clb.CheckTCP && ct != clb.CheckHTTP && ct != clb.CheckCustom:
		return api.InvalidValue("HealthCheck.CheckType", "a TCP listener checks with TCP, HTTP or CUSTOM, got %q", ct)
	case protocol == clb.ProtocolUDP && ct != checkPing && ct != clb.CheckCustom:
		return api.InvalidValue("HealthCheck.CheckType", "a UDP listener checks with PING or CUSTOM, got %q", ct)
	}
	if ct == clb.CheckHTTP {
		// The model docs: a TCP listener's HTTP check takes exactly one status class.
		if c := *hc.HttpCode; protocol == clb.ProtocolTCP && c&(c-1) != 0 {
			return api.InvalidValue("HealthCheck.HttpCode", "a TCP listener's HTTP check takes one status class (1, 2, 4, 8 or 16), got %d", c)
		}
		if !strings.HasPrefix(*hc.HttpCheckPath, "/") || len(*hc.HttpCheckPath) > 200 {
			return api.InvalidValue("HealthCheck.HttpCheckPath", "must start with / and be at most 200 characters, got %q", *hc.HttpCheckPath)
		}
		if m := *hc.HttpCheckMethod; m != "HEAD" && m != "GET" {
			return api.InvalidValue("HealthCheck.HttpCheckMethod", "must be HEAD or GET, got %q", m)
		}
		if v := *hc.HttpVersion; v != "HTTP/1.0" && v != "HTTP/1.1" {
			return api.InvalidValue("HealthCheck.HttpVersion", "must be HTTP/1.0 or HTTP/1.1, got %q", v)
		}
	}
	if ct == clb.CheckCustom {
		contexts := []struct {
			name string
			v    string
		}{{"SendContext", *hc.SendContext}, {"RecvContext", *hc.RecvContext}}
		switch *hc.ContextType {
		case "TEXT":
		case "HEX":
			// The model docs: only 0123456789ABCDEF, an even number of them.
			for _, f := range contexts {
				if len(f.v)%2 != 0 || strings.Trim(f.v, "0123456789ABCDEF") != "" {
					return api.InvalidValue("HealthCheck."+f.name, "a HEX context is an even number of 0-9 and A-F, got %q", f.v)
				}
			}
		default:
			return api.InvalidValue("HealthCheck.ContextType", "a CUSTOM check needs TEXT or HEX, got %q", *hc.ContextType)
		}
		for _, f := range contexts {
			if len(f.v) > maxContext {
				return api.InvalidValue("HealthCheck."+f.name, "is at most %d characters, got %d", maxContext, len(f.v))
			}
			if strings.IndexFunc(f.v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
				return api.InvalidValue("HealthCheck."+f.name, "takes visible ASCII characters only")
			}
		}
		if *hc.SendContext == "" {
			return api.MissingParameter("HealthCheck.SendContext")
		}
		if *hc.RecvContext == "" {
			return api.MissingParameter("HealthCheck.RecvContext")
		}
	}
	return nil
}

// healthSpec turns a stored health check into the data plane's, scaling seconds by unit.
func healthSpec(hc *clb.HealthCheck, unit time.Duration) dataplane.HealthSpec {
	if hc.HealthSwitch == nil || *hc.HealthSwitch == 0 {
		return dataplane.HealthSpec{}
	}
	hs := dataplane.HealthSpec{
		Enabled:            true,
		Interval:           time.Duration(*hc.IntervalTime) * unit,
		Timeout:            time.Duration(*hc.TimeOut) * unit,
		HealthyThreshold:   int(*hc.HealthNum),
		UnhealthyThreshold: int(*hc.UnHealthNum),
		Port:               uint16(*hc.CheckPort),
	}
	switch *hc.CheckType {
	case clb.CheckHTTP:
		hs.Type = dataplane.CheckHTTP
		hs.HTTPPath, hs.HTTPHost, hs.HTTPMethod = *hc.HttpCheckPath, *hc.HttpCheckDomain, *hc.HttpCheckMethod
		hs.HTTPCodes = int(*hc.HttpCode)
	case clb.CheckCustom:
		hs.Type = dataplane.CheckCustom
		hs.Send, hs.Recv = []byte(*hc.SendContext), []byte(*hc.RecvContext)
		if *hc.ContextType == "HEX" {
			hs.Send, _ = hex.DecodeString(*hc.SendContext)
			hs.Recv, _ = hex.DecodeString(*hc.RecvContext)
		}
	case checkPing:
		hs.Type = dataplane.CheckPing
	default:
		hs.Type = dataplane.CheckTCP
	}
	return hs
}
