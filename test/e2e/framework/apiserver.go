package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// ServiceClusterIPRange is the apiserver's --service-cluster-ip-range.
	ServiceClusterIPRange = "10.96.0.0/16"
	// ServiceAccountIssuer is the apiserver's --service-account-issuer.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// AdminUser is the user the admin token authenticates as, in group system:masters.
	AdminUser = "e2e-admin"

	// APIServerStartTimeout bounds how long StartAPIServer waits for /readyz. The server is
	// ready in about 2 s on an idle machine; CI runs it next to compilers.
	APIServerStartTimeout = 2 * time.Minute
)

// APIServer is a running kube-apiserver with an admin identity.
type APIServer struct {
	// URL is the https address clients use.
	URL string
	// KubeconfigPath is an admin kubeconfig (token of AdminUser, the server's CA); pass it
	// as --kubeconfig, --authentication-kubeconfig and --authorization-kubeconfig.
	KubeconfigPath string
	// Client and Config are built from KubeconfigPath.
	Client *kubernetes.Clientset
	Config *rest.Config
	// Token is the admin bearer token; CAData the PEM CA that signed the serving cert.
	Token  string
	CAData []byte
	// ServiceAccountKeyPath is the private key that signs service-account tokens, for a
	// kube-controller-manager's --service-account-private-key-file.
	ServiceAccountKeyPath string
	Process               *Process
}

type apiServerConfig struct {
	bindAddress string
	extraArgs   []string
}

// APIServerOption changes how StartAPIServer runs kube-apiserver.
type APIServerOption func(*apiServerConfig)

// WithBindAddress serves on ip instead of 127.0.0.1, for example an address in a network
// namespace the test created so that a kube-proxy inside it can reach the server. It is
// also the advertise address and is in the serving certificate.
func WithBindAddress(ip string) APIServerOption {
	return func(c *apiServerConfig) { c.bindAddress = ip }
}

// WithAPIServerArgs appends flags; a flag given twice takes the later value.
func WithAPIServerArgs(args ...string) APIServerOption {
	return func(c *apiServerConfig) { c.extraArgs = append(c.extraArgs, args...) }
}

// StartAPIServer runs kube-apiserver against etcd, waits for /readyz, and writes an admin
// kubeconfig. t.Cleanup stops it.
func StartAPIServer(t testing.TB, etcd *Etcd, opts ...APIServerOption) *APIServer {
	t.Helper()
	cfg := apiServerConfig{bindAddress: "127.0.0.1"}
	for _, o := range opts {
		o(&cfg)
	}
	bindIP := net.ParseIP(cfg.bindAddress)
	if bindIP == nil {
		t.Fatalf("start kube-apiserver: bind address %q is not an IP", cfg.bindAddress)
	}
	bin := KubeBinary(t, "kube-apiserver")

	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	token := randomHex(t, 16)
	tokenFile := filepath.Join(dir, "tokens.csv")
	// token,user,uid,"group,..."
	writeFile(t, tokenFile, fmt.Sprintf("%s,%s,%s-uid,system:masters\n", token, AdminUser, AdminUser), 0o600)
	saKey, saPub := writeServiceAccountKeys(t, dir)

	port := FreePort(t)
	url := "https://" + net.JoinHostPort(cfg.bindAddress, strconv.Itoa(port))
	args := []string{
		"--etcd-servers=" + etcd.ClientURL,
		"--bind-address=" + cfg.bindAddress,
		"--advertise-address=" + cfg.bindAddress,
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--token-auth-file=" + tokenFile,
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	if bindIP.IsLoopback() {
		// The reconciler publishes the advertise address as the endpoint of the default
		// "kubernetes" Service, and Endpoints validation rejects loopback addresses: it
		// would log an error every few seconds and never succeed.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	args = append(args, cfg.extraArgs...)
	p := StartProcess(t, "kube-apiserver", bin, args...)

	a := &APIServer{URL: url, Token: token, ServiceAccountKeyPath: saKey, Process: p}
	ctx := context.Background()
	certFile := filepath.Join(certDir, "apiserver.crt")
	if err := WaitFor(ctx, APIServerStartTimeout, PollInterval, "kube-apiserver at "+url+" to be ready",
		func(ctx context.Context) error {
			if a.CAData == nil {
				ca, err := servingCA(certFile)
				if err != nil {
					return whileRunning(p, err)
				}
				a.CAData = ca
			}
			return whileRunning(p, a.ready(ctx))
		},
	); err != nil {
		t.Fatalf("start kube-apiserver: %v (log %s)", err, p.LogPath)
	}

	// Beside the token file rather than in the artifacts: it holds the admin token.
	a.KubeconfigPath = filepath.Join(dir, "admin.kubeconfig")
	if err := a.WriteKubeconfig(a.KubeconfigPath, a.URL); err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", a.KubeconfigPath)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", a.KubeconfigPath, err)
	}
	// Tests create objects in bursts; client-side throttling would only add latency.
	restCfg.QPS, restCfg.Burst = 100, 200
	// The server is local (loopback or a namespace the test made); never via a proxy.
	restCfg.Proxy = func(*http.Request) (*neturl.URL, error) { return nil, nil }
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatalf("client for %s: %v", a.URL, err)
	}
	a.Config, a.Client = restCfg, client
	return a
}

// WriteKubeconfig writes an admin kubeconfig for server, normally a.URL. Another address
// of the same server must be one its self-signed certificate covers: the bind (and
// advertise) address, or the first IP of ServiceClusterIPRange for a client that reaches
// the server through the "kubernetes" Service.
func (a *APIServer) WriteKubeconfig(path, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: a.CAData}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{Token: a.Token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: AdminUser}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// ready reports nil once /readyz answers 200. It trusts only the server's own CA.
func (a *APIServer) ready(ctx context.Context) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.CAData) {
		return errors.New("no CA certificate to verify the server with")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /readyz: %s", resp.Status)
	}
	return nil
}

// servingCA returns the CA of the self-signed serving certificate kube-apiserver writes
// into --cert-dir: the file holds the serving certificate followed by the CA that signed it.
func servingCA(certFile string) ([]byte, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	var last *pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			last = b
		}
	}
	if last == nil {
		return nil, fmt.Errorf("serving certificate %s: no certificate yet", certFile)
	}
	cert, err := x509.ParseCertificate(last.Bytes)
	if err != nil {
		return nil, fmt.Errorf("serving certificate %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("serving certificate %s: last certificate %q is not a CA", certFile, cert.Subject)
	}
	return pem.EncodeToMemory(last), nil
}

// writeServiceAccountKeys generates the key pair that signs and verifies service-account
// tokens. ECDSA P-256 is accepted for both and is much quicker to generate than RSA.
func writeServiceAccountKeys(t testing.TB, dir string) (keyPath, pubPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate service-account key: %v", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshal service-account key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("marshal service-account public key: %v", err)
	}
	keyPath = filepath.Join(dir, "sa.key")
	pubPath = filepath.Join(dir, "sa.pub")
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), 0o600)
	writeFile(t, pubPath, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), 0o644)
	return keyPath, pubPath
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
