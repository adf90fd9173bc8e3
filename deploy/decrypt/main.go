// kubemate-decrypt opens Kubemate's field envelopes inside the app's pod.
//
//	kubemate-decrypt files --out DIR [--in DIR]   write each sealed env var (and file of --in) as DIR/NAME, mode 0400
//	kubemate-decrypt exec -- COMMAND [ARGS...]    replace sealed env vars by their plaintext, then exec COMMAND
//
// The key versions are read from the Secret $KUBEMATE_KEY_SECRET in namespace $KUBEMATE_KEY_NAMESPACE
// (default kubemate-fieldkeys) with the pod's ServiceAccount token; Kubemate lets only the app's ServiceAccount
// read it. The envelope is the one of apps/fieldcrypt/envelope.py:
// kmenc:v1:<version>:<base64url(nonce 12 || AES-256-GCM ciphertext+tag)>, additional data = the field's name.
// Nothing secret is ever printed: errors are one sentence on stderr and a non-zero exit.
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const prefix = "kmenc:v1:"
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type config struct {
	server, tokenFile, caFile, namespace, secret string
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kubemate-decrypt: "+format+"\n", args...)
	os.Exit(1)
}

func fetchKeys(c config) (map[int][]byte, error) {
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the ServiceAccount token at %s", c.tokenFile)
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.caFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cannot read the cluster's CA certificate at %s", c.caFile)
	}
	client := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/secrets/%s", strings.TrimRight(c.server, "/"), c.namespace, c.secret)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the cluster's API server at %s did not answer", c.server)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("this pod's ServiceAccount may not read the key Secret %s/%s (HTTP %d): ask Kubemate to grant it", c.namespace, c.secret, resp.StatusCode)
	case http.StatusNotFound:
		return nil, fmt.Errorf("the key Secret %s/%s does not exist", c.namespace, c.secret)
	default:
		return nil, fmt.Errorf("the API server answered HTTP %d for the key Secret", resp.StatusCode)
	}
	var secret struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &secret); err != nil {
		return nil, errors.New("the key Secret is not valid JSON")
	}
	keys := map[int][]byte{}
	for name, value := range secret.Data {
		version, err := strconv.Atoi(strings.TrimPrefix(name, "v"))
		raw, err2 := base64.StdEncoding.DecodeString(value)
		if err != nil || err2 != nil || !strings.HasPrefix(name, "v") || len(raw) != 32 {
			continue
		}
		keys[version] = raw
	}
	if len(keys) == 0 {
		return nil, errors.New("the key Secret holds no key")
	}
	return keys, nil
}

func open(keys map[int][]byte, field, token string) (string, error) {
	rest := strings.TrimPrefix(token, prefix)
	parts := strings.SplitN(rest, ":", 2)
	if len(parts) != 2 {
		return "", fmt.Errorf("%s is damaged", field)
	}
	version, err := strconv.Atoi(parts[0])
	if err != nil {
		return "", fmt.Errorf("%s is damaged: its key version is not a number", field)
	}
	key, ok := keys[version]
	if !ok {
		return "", fmt.Errorf("%s was sealed with key version %d, which the key Secret no longer holds", field, version)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || len(raw) < 12+16 {
		return "", fmt.Errorf("%s is damaged", field)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, raw[:12], raw[12:], []byte(field))
	if err != nil {
		return "", fmt.Errorf("%s does not open: it was altered, or sealed for another field", field)
	}
	return string(plain), nil
}

func sealedEnv() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(value, prefix) {
			out[name] = value
		}
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fail("say files or exec (see the comment at the top of main.go)")
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT", "443")
	c := config{}
	flags.StringVar(&c.server, "server", env("KUBEMATE_SERVER", "https://"+host+":"+port), "API server URL")
	flags.StringVar(&c.tokenFile, "token-file", env("KUBEMATE_TOKEN_FILE", saDir+"/token"), "ServiceAccount token")
	flags.StringVar(&c.caFile, "ca-file", env("KUBEMATE_CA_FILE", saDir+"/ca.crt"), "cluster CA")
	flags.StringVar(&c.namespace, "key-namespace", env("KUBEMATE_KEY_NAMESPACE", "kubemate-fieldkeys"), "key Secret namespace")
	flags.StringVar(&c.secret, "key-secret", os.Getenv("KUBEMATE_KEY_SECRET"), "key Secret name")
	out := flags.String("out", "/kubemate/decrypted", "where files mode writes")
	in := flags.String("in", "", "a folder of sealed files (files mode)")
	_ = flags.Parse(os.Args[2:])
	if c.secret == "" {
		fail("no key Secret named: set KUBEMATE_KEY_SECRET or --key-secret")
	}
	sealed := sealedEnv()
	if *in != "" {
		entries, _ := os.ReadDir(*in)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(*in, e.Name()))
			if err == nil && strings.HasPrefix(string(data), prefix) && !e.IsDir() {
				sealed[e.Name()] = strings.TrimSpace(string(data))
			}
		}
	}
	keys, err := fetchKeys(c)
	if err != nil {
		fail("%v", err)
	}
	plain := map[string]string{}
	for name, token := range sealed {
		value, err := open(keys, name, token)
		if err != nil {
			fail("%v", err)
		}
		plain[name] = value
	}
	switch mode {
	case "files":
		if err := os.MkdirAll(*out, 0o700); err != nil {
			fail("cannot create %s", *out)
		}
		for name, value := range plain {
			if strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
				fail("%q is not a usable file name", name)
			}
			if err := os.WriteFile(filepath.Join(*out, name), []byte(value), 0o400); err != nil {
				fail("cannot write %s", filepath.Join(*out, name))
			}
		}
		fmt.Fprintf(os.Stderr, "kubemate-decrypt: %d value(s) decrypted into %s\n", len(plain), *out)
	case "exec":
		args := flags.Args()
		if len(args) == 0 {
			fail("exec needs a command after --")
		}
		environment := []string{}
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			if value, ok := plain[name]; ok {
				kv = name + "=" + value
			}
			environment = append(environment, kv)
		}
		path := args[0]
		if !strings.Contains(path, "/") {
			for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
				if _, err := os.Stat(filepath.Join(dir, path)); err == nil {
					path = filepath.Join(dir, path)
					break
				}
			}
		}
		if err := syscall.Exec(path, args, environment); err != nil {
			fail("cannot run %s", args[0])
		}
	default:
		fail("unknown mode %q: say files or exec", mode)
	}
}
