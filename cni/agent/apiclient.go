package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// APIConfig is how the agent reaches the Kubernetes API: a server URL, TLS
// settings and a bearer token or client certificate. It covers in-cluster service
// account credentials and kubeconfig files with certificates or tokens; exec and
// auth-provider plugins are not supported (a node agent does not need them).
type APIConfig struct {
	Server    string
	TLS       *tls.Config
	Token     string
	TokenFile string // re-read on every request: projected tokens rotate
}

const (
	saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// InClusterConfig uses the pod's service account, as a DaemonSet pod does.
func InClusterConfig() (*APIConfig, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("in-cluster config: KUBERNETES_SERVICE_HOST/PORT not set (pass --kubeconfig outside a pod)")
	}
	ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("in-cluster config: %s/ca.crt holds no certificate", saDir)
	}
	return &APIConfig{
		Server:    "https://" + net.JoinHostPort(host, port),
		TLS:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TokenFile: filepath.Join(saDir, "token"),
	}, nil
}

type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			TLSServerName            string `json:"tls-server-name"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string          `json:"token"`
			TokenFile             string          `json:"tokenFile"`
			ClientCertificate     string          `json:"client-certificate"`
			ClientCertificateData string          `json:"client-certificate-data"`
			ClientKey             string          `json:"client-key"`
			ClientKeyData         string          `json:"client-key-data"`
			Exec                  json.RawMessage `json:"exec"`
			AuthProvider          json.RawMessage `json:"auth-provider"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

// LoadKubeconfig reads the current context of a kubeconfig file.
func LoadKubeconfig(path string) (*APIConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	base := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	ctxName := kc.CurrentContext
	if ctxName == "" && len(kc.Contexts) == 1 {
		ctxName = kc.Contexts[0].Name
	}
	var clusterName, userName string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == ctxName {
			clusterName, userName, found = c.Context.Cluster, c.Context.User, true
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %s: context %q not found", path, ctxName)
	}
	cfg := &APIConfig{TLS: &tls.Config{MinVersion: tls.VersionTLS12}}
	found = false
	for _, c := range kc.Clusters {
		if c.Name != clusterName {
			continue
		}
		found = true
		cfg.Server = strings.TrimRight(c.Cluster.Server, "/")
		cfg.TLS.InsecureSkipVerify = c.Cluster.InsecureSkipTLSVerify
		cfg.TLS.ServerName = c.Cluster.TLSServerName
		ca, err := dataOrFile(c.Cluster.CertificateAuthorityData, rel(c.Cluster.CertificateAuthority))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: cluster %s: certificate-authority: %w", path, clusterName, err)
		}
		if ca != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return nil, fmt.Errorf("kubeconfig %s: cluster %s: certificate-authority holds no certificate", path, clusterName)
			}
			cfg.TLS.RootCAs = pool
		}
	}
	if !found || cfg.Server == "" {
		return nil, fmt.Errorf("kubeconfig %s: cluster %q not found or has no server", path, clusterName)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		if len(u.User.Exec) > 0 || len(u.User.AuthProvider) > 0 {
			return nil, fmt.Errorf("kubeconfig %s: user %s: exec and auth-provider credentials are not supported; use a token or client certificate", path, userName)
		}
		cfg.Token, cfg.TokenFile = u.User.Token, rel(u.User.TokenFile)
		cert, err := dataOrFile(u.User.ClientCertificateData, rel(u.User.ClientCertificate))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: user %s: client-certificate: %w", path, userName, err)
		}
		key, err := dataOrFile(u.User.ClientKeyData, rel(u.User.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: user %s: client-key: %w", path, userName, err)
		}
		if cert != nil || key != nil {
			pair, err := tls.X509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("kubeconfig %s: user %s: client certificate: %w", path, userName, err)
			}
			cfg.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	return cfg, nil
}

func dataOrFile(data, file string) ([]byte, error) {
	if data != "" {
		return base64.StdEncoding.DecodeString(data)
	}
	if file != "" {
		return os.ReadFile(file)
	}
	return nil, nil
}

// NodeWatcher lists and watches one Node through the API's list/watch protocol.
type NodeWatcher struct {
	cfg    *APIConfig
	client *http.Client
	// Backoff is the wait after a failed list or a broken watch.
	Backoff time.Duration
}

// NewNodeWatcher returns a watcher for cfg.
func NewNodeWatcher(cfg *APIConfig) *NodeWatcher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS
	return &NodeWatcher{cfg: cfg, client: &http.Client{Transport: tr}, Backoff: time.Second}
}

type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

var errGone = errors.New("resource version too old")

// Watch calls onNode with the Node's current state and after every change until
// ctx ends. It relists after a 410 Gone and reconnects after any failure.
func (w *NodeWatcher) Watch(ctx context.Context, name string, onNode func(*Node)) error {
	for ctx.Err() == nil {
		rv, err := w.list(ctx, name, onNode)
		for err == nil && ctx.Err() == nil {
			rv, err = w.watch(ctx, name, rv, onNode)
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errGone) {
			klog.ErrorS(err, "Watching node failed; retrying", "node", name, "backoff", w.Backoff)
			select {
			case <-ctx.Done():
			case <-time.After(w.Backoff):
			}
		}
	}
	return nil
}

func (w *NodeWatcher) request(ctx context.Context, query url.Values) (*http.Response, error) {
	u := w.cfg.Server + "/api/v1/nodes?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "stratus-cni-agent")
	token := w.cfg.Token
	if w.cfg.TokenFile != "" {
		b, err := os.ReadFile(w.cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusGone {
			return nil, errGone
		}
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

func selector(name string) string { return "metadata.name=" + name }

func (w *NodeWatcher) list(ctx context.Context, name string, onNode func(*Node)) (string, error) {
	resp, err := w.request(ctx, url.Values{"fieldSelector": {selector(name)}})
	if err != nil {
		return "", fmt.Errorf("list node %s: %w", name, err)
	}
	defer resp.Body.Close()
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []Node `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return "", fmt.Errorf("list node %s: decode: %w", name, err)
	}
	for i := range list.Items {
		if list.Items[i].Name() == name {
			onNode(&list.Items[i])
		}
	}
	return list.Metadata.ResourceVersion, nil
}

// watch streams events from rv and returns the last resource version seen when
// the server ends the stream (its timeout), so the next watch resumes from there.
func (w *NodeWatcher) watch(ctx context.Context, name, rv string, onNode func(*Node)) (string, error) {
	resp, err := w.request(ctx, url.Values{
		"fieldSelector":       {selector(name)},
		"watch":               {"true"},
		"resourceVersion":     {rv},
		"allowWatchBookmarks": {"true"},
		"timeoutSeconds":      {"300"},
	})
	if err != nil {
		return rv, fmt.Errorf("watch node %s: %w", name, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return rv, nil
			}
			return rv, fmt.Errorf("watch node %s: %w", name, err)
		}
		switch ev.Type {
		case "ERROR":
			var st status
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone {
				return rv, errGone
			}
			return rv, fmt.Errorf("watch node %s: server error %d: %s", name, st.Code, st.Message)
		case "ADDED", "MODIFIED", "BOOKMARK":
			var n Node
			if err := json.Unmarshal(ev.Object, &n); err != nil {
				return rv, fmt.Errorf("watch node %s: decode %s: %w", name, ev.Type, err)
			}
			if n.Metadata.ResourceVersion != "" {
				rv = n.Metadata.ResourceVersion
			}
			if ev.Type != "BOOKMARK" && n.Name() == name {
				onNode(&n)
			}
		case "DELETED":
			// Keep the last conflist: pods still running on the node need it for DEL.
		}
	}
}
