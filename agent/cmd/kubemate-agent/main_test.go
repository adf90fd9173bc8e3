package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.json")
	os.WriteFile(cfg, []byte(`{"token_file": "`+filepath.Join(dir, "missing")+`"}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", filepath.Join(dir, "none.json")}, "no such file"},
		{[]string{"--config", cfg}, "token file"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		err := run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%v) = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestRunOnce(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("once-token-0123456789\n"), 0o600)
	cfg := filepath.Join(dir, "agent.json")
	os.WriteFile(cfg, []byte(`{"token_file": "`+tok+`", "collectors": ["files"]}`), 0o600)
	if err := run([]string{"--config", cfg, "--root", dir, "--once"}); err != nil {
		t.Fatal(err)
	}
}
