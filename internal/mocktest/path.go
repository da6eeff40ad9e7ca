package mocktest

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// At walks a property path such as "spec.template.spec.containers[0].image"
// into the inputs. It reports whether a secret was crossed on the way, and
// whether the path exists. Map keys with dots are written in brackets:
// metadata.annotations["cert-manager.io/cluster-issuer"].
func (r Resource) At(path string) (v resource.PropertyValue, secret, ok bool) {
	v = resource.NewObjectProperty(r.Inputs)
	for _, step := range splitPath(path) {
		v = unwrap(v, &secret)
		switch {
		case step.index >= 0:
			if !v.IsArray() || step.index >= len(v.ArrayValue()) {
				return v, secret, false
			}
			v = v.ArrayValue()[step.index]
		default:
			if !v.IsObject() {
				return v, secret, false
			}
			var found bool
			v, found = v.ObjectValue()[resource.PropertyKey(step.key)]
			if !found {
				return v, secret, false
			}
		}
	}
	return unwrap(v, &secret), secret, true
}

// unwrap takes a value out of its secret and output wrappers, noting
// whether any of them was secret.
func unwrap(v resource.PropertyValue, secret *bool) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			*secret = true
			v = v.SecretValue().Element
		case v.IsOutput():
			*secret = *secret || v.OutputValue().Secret
			v = v.OutputValue().Element
		default:
			return v
		}
	}
}

// Equal fails the test unless the value at path is want; ints compare with
// the float64 numbers the engine hands back.
func (r Resource) Equal(t testing.TB, path string, want any) {
	t.Helper()
	got := r.Get(t, path)
	if w, ok := want.(int); ok {
		want = float64(w)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s: %s = %#v, want %#v", r.Type, r.Name, path, got, want)
	}
}

// Get is At that fails the test when the path is missing, and returns the
// plain Go value (string, float64, bool, []any, map[string]any).
func (r Resource) Get(t testing.TB, path string) any {
	t.Helper()
	v, _, ok := r.At(path)
	if !ok {
		t.Fatalf("%s %s has no %s", r.Type, r.Name, path)
	}
	return plain(v)
}

// Has reports whether the path exists.
func (r Resource) Has(path string) bool {
	_, _, ok := r.At(path)
	return ok
}

// Str is Get for strings; numbers print without a fraction.
func (r Resource) Str(t testing.TB, path string) string {
	t.Helper()
	switch x := r.Get(t, path).(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, plain(e))
		}
		return out
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = plain(e)
		}
		return out
	case v.IsNull():
		return nil
	default:
		return v.V
	}
}

type pathStep struct {
	key   string
	index int
}

func splitPath(path string) []pathStep {
	var steps []pathStep
	for len(path) > 0 {
		switch {
		case strings.HasPrefix(path, "[\""):
			end := strings.Index(path, "\"]")
			steps = append(steps, pathStep{key: path[2:end], index: -1})
			path = path[end+2:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			n, _ := strconv.Atoi(path[1:end])
			steps = append(steps, pathStep{index: n})
			path = path[end+1:]
		case path[0] == '.':
			path = path[1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			steps = append(steps, pathStep{key: path[:end], index: -1})
			path = path[end:]
		}
	}
	return steps
}
