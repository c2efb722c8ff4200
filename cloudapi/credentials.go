package cloudapi

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Credentials sign every request. Token is the optional STS session token (X-TC-Token).
type Credentials struct {
	SecretID  string `json:"secretId"`
	SecretKey string `json:"secretKey"`
	Token     string `json:"token,omitempty"`
}

// String never prints the key, so a credentials value can't leak through a log line.
func (c Credentials) String() string {
	id := c.SecretID
	if len(id) > 6 {
		id = id[:6] + "..."
	}
	return fmt.Sprintf("Credentials{SecretID: %s, SecretKey: <redacted>}", id)
}

// GoString keeps %#v from printing the key as well.
func (c Credentials) GoString() string { return c.String() }

// Validate reports a missing half of the key pair.
func (c Credentials) Validate() error {
	switch {
	case c.SecretID == "":
		return errors.New("credentials: secretId is empty")
	case c.SecretKey == "":
		return errors.New("credentials: secretKey is empty")
	}
	return nil
}

// Environment variables read by CredentialsFromEnv.
const (
	EnvSecretID  = "STRATUS_SECRET_ID"
	EnvSecretKey = "STRATUS_SECRET_KEY"
	EnvToken     = "STRATUS_TOKEN"
)

// CredentialsFromEnv reads STRATUS_SECRET_ID / STRATUS_SECRET_KEY (and STRATUS_TOKEN);
// ok is false when neither key variable is set.
func CredentialsFromEnv() (c Credentials, ok bool) {
	c = Credentials{
		SecretID:  os.Getenv(EnvSecretID),
		SecretKey: os.Getenv(EnvSecretKey),
		Token:     os.Getenv(EnvToken),
	}
	return c, c.SecretID != "" || c.SecretKey != ""
}

// CredentialsFromFile reads a YAML or JSON file with secretId, secretKey and optional token.
func CredentialsFromFile(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read credentials file: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("parse credentials file %s: %w", path, err)
	}
	c.SecretID, c.SecretKey = strings.TrimSpace(c.SecretID), strings.TrimSpace(c.SecretKey)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}
