package cluster

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestStorageClassesReadsTheDefaultAnnotations: the kubeconfig's server,
// CA, context and token reach the API server (clientcmd sends credentials
// over TLS only); both default annotations count.
func TestStorageClassesReadsTheDefaultAnnotations(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/storage.k8s.io/v1/storageclasses" || r.Header.Get("Authorization") != "Bearer staging-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, `{"items":[
			{"metadata":{"name":"standard","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}},
			{"metadata":{"name":"legacy","annotations":{"storageclass.beta.kubernetes.io/is-default-class":"true"}}},
			{"metadata":{"name":"fast"}}]}`)
	}))
	defer srv.Close()
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "http://127.0.0.1:1"}
- name: staging
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: ci
  user: {token: staging-token}
contexts:
- name: prod
  context: {cluster: prod, user: ci}
- name: staging
  context: {cluster: staging, user: ci}
current-context: prod
`, srv.URL, base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	c, err := Connect(Access{KubeconfigContent: kubeconfig, Context: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.StorageClasses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []StorageClass{{Name: "fast"}, {Name: "legacy", Default: true}, {Name: "standard", Default: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The current context (prod) is unreachable: the error says what failed.
	c, err = Connect(Access{KubeconfigContent: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StorageClasses(context.Background()); err == nil {
		t.Error("an unreachable API server gave no error")
	}
}
