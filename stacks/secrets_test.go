package stacks

import (
	"strings"
	"testing"
)

func TestStackFileSecretsField(t *testing.T) {
	const enc = "{secure: v1:AAAAAAAAAAAAAAAA:BBBBBBBB}"
	cases := []struct {
		name, file string
		want       []string
	}{
		{"every secret encrypted", `config:
  fastapi-infra:dbPassword:
    secure: v1:AAAA:BBBB
  fastapi-infra:secretEnv:
    API_KEY: ` + enc + `
    TOKEN: ` + enc + `
  fastapi-infra:app:
    replicas: 2
`, nil},
		{"one secretEnv value in plain text beside an encrypted one", `config:
  fastapi-infra:secretEnv:
    API_KEY: ` + enc + `
    B: x
`, []string{"fastapi-infra:secretEnv.B: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret --path 'secretEnv.B' <value>"}},
		{"a plain top-level secret", `config:
  fastapi-infra:tlsKey: "-----BEGIN PRIVATE KEY-----"
  fastapi-infra:registryPassword: ` + enc + `
`, []string{"fastapi-infra:tlsKey: is stored in plain text in the stack file; store it encrypted instead: pulumi config set --secret tlsKey <value>"}},
		{"plain keys that are not secret", `config:
  fastapi-infra:domain: example.com
  fastapi-infra:app:
    env: {A: b}
`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckStackFileSecrets([]byte(tc.file))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestStackFileArchitecture(t *testing.T) {
	for file, want := range map[string]Architecture{
		"config:\n  fastapi-infra:architecture: kubernetes\n":    Kubernetes,
		"config:\n  fastapi-infra:architecture: single-server\n": SingleServer,
		"config:\n  fastapi-infra:domain: localhost\n":           SingleServer, // the key's default
		"": SingleServer,
	} {
		if got, err := StackFileArchitecture([]byte(file)); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", file, got, err, want)
		}
	}
	if _, err := StackFileArchitecture([]byte("config:\n  fastapi-infra:architecture: [a]\n")); err == nil || !strings.Contains(err.Error(), "fastapi-infra:architecture") {
		t.Errorf("a list as the architecture: %v", err)
	}
}
