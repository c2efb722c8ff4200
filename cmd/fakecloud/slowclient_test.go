package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/fakecloud"
)

// generous bounds how long a test waits for the server to act. It is not a speed target:
// the assertions are that the server cut the client off, never how fast.
const generous = 60 * time.Second

// rawRequest is the head of a signed-API request; the body is read before the signature
// is checked, so these tests need no valid signature.
func rawRequest(addr string, extra ...string) string {
	lines := []string{"POST / HTTP/1.1", "Host: " + addr, "Content-Type: application/json", "X-TC-Action: DescribeZones", "X-TC-Version: 2017-03-12", "X-TC-Region: ap-guangzhou"}
	return strings.Join(append(lines, extra...), "\r\n") + "\r\n\r\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(generous)))
	return conn
}

// trickle writes one byte every interval until the connection fails, counting them.
func trickle(conn net.Conn, interval time.Duration, sent *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := conn.Write([]byte("a")); err != nil {
				done <- err
				return
			}
			sent.Add(1)
			time.Sleep(interval)
		}
	}()
	return done
}

// readUntilClosed reads what the server sends until it closes the connection. It fails
// the test if the connection is still open when the generous deadline passes.
func readUntilClosed(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open for %s; got %q", generous, b)
	}
	return b
}

func TestServeCutsOffSlowClients(t *testing.T) {
	addr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--read-timeout", "2s", "--read-header-timeout", "1s")
	defer func() { assert.NoError(t, stop()) }()

	t.Run("a body that never finishes arriving", func(t *testing.T) {
		conn := dial(t, addr)
		_, err := io.WriteString(conn, rawRequest(addr, "Content-Length: 1000000")+`{"Pad":"`)
		require.NoError(t, err)
		var sent atomic.Int64
		trickle(conn, 50*time.Millisecond, &sent)
		got := readUntilClosed(t, conn)
		assert.Less(t, sent.Load(), int64(1000000), "the server closed the connection before the body was complete")
		// What the server managed to answer before closing, if anything, is an envelope error.
		if len(got) > 0 {
			assert.Contains(t, string(got), "InvalidParameter")
		}
	})

	t.Run("headers that never finish arriving", func(t *testing.T) {
		conn := dial(t, addr)
		_, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ")
		require.NoError(t, err)
		var sent atomic.Int64
		trickle(conn, 50*time.Millisecond, &sent)
		got := readUntilClosed(t, conn)
		assert.NotContains(t, string(got), "RequestId", "no request was ever handled")
	})

	t.Run("a prompt client is served", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/_fakecloud/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// envelopeError reads one HTTP response from r and returns its envelope error.
func envelopeError(t *testing.T, r *bufio.Reader) (code, message string) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err, "the server answers before the client has sent the body")
	defer resp.Body.Close()
	var env struct {
		Response struct {
			Error     struct{ Code, Message string }
			RequestId string
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "errors are HTTP 200 envelopes")
	assert.NotEmpty(t, env.Response.RequestId)
	return env.Response.Error.Code, env.Response.Error.Message
}

func TestServeRefusesHugeBodies(t *testing.T) {
	addr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	defer func() { assert.NoError(t, stop()) }()

	t.Run("declared too large", func(t *testing.T) {
		conn := dial(t, addr)
		// Only the head is sent: the answer must not wait for 11 MiB that never come.
		_, err := io.WriteString(conn, rawRequest(addr, fmt.Sprintf("Content-Length: %d", fakecloud.MaxBody+1)))
		require.NoError(t, err)
		code, msg := envelopeError(t, bufio.NewReader(conn))
		assert.Equal(t, "InvalidParameter", code)
		assert.Contains(t, msg, "larger than")
	})

	// Streams up to 64 MiB without a Content-Length (chunked) or past a Content-Length
	// that lies: the server reads at most its limit, answers and stops reading. Under a
	// lying length the declared 10 MiB are the body (then refused for its missing
	// signature) and the rest is never read as part of it.
	for _, tc := range []struct {
		name, head, wantCode, wantMessage string
		body                              func(chunk []byte) []byte
	}{
		{"chunked without a length", "Transfer-Encoding: chunked", "InvalidParameter", "larger than", func(c []byte) []byte {
			return append(append([]byte(fmt.Sprintf("%x\r\n", len(c))), c...), "\r\n"...)
		}},
		{"length at the limit, body endless", fmt.Sprintf("Content-Length: %d", fakecloud.MaxBody), "AuthFailure.SignatureFailure", "Authorization", func(c []byte) []byte { return c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const total = 64 << 20
			conn := dial(t, addr)
			_, err := io.WriteString(conn, rawRequest(addr, tc.head))
			require.NoError(t, err)
			_, err = conn.Write(tc.body([]byte(`{"Pad":"`)))
			require.NoError(t, err)
			chunk := []byte(strings.Repeat("a", 64<<10))
			var sent atomic.Int64
			go func() {
				for sent.Load() < total {
					if _, err := conn.Write(tc.body(chunk)); err != nil {
						return
					}
					sent.Add(int64(len(chunk)))
				}
			}()
			code, msg := envelopeError(t, bufio.NewReader(conn))
			assert.Equal(t, tc.wantCode, code)
			assert.Contains(t, msg, tc.wantMessage)
			_ = conn.Close() // unblocks the writer if the server stopped reading
			assert.Less(t, sent.Load(), int64(total), "the server stopped reading long before the 64 MiB were sent")
		})
	}
}
